//! Exposition formats: parsing pushed bodies (text 0.0.4, delimited protobuf) and
//! rendering scrapes.

pub mod protobuf;
pub mod render;
pub mod text_parse;
