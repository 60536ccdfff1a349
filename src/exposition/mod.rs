//! Exposition formats: parsing pushed bodies (text 0.0.4, delimited protobuf),
//! negotiating and rendering scrapes.

pub mod escaping;
pub mod native;
pub mod negotiate;
mod printable;
pub mod protobuf;
pub mod render;
pub mod text_parse;
