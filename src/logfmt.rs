//! `--log.format=logfmt`: one line per event in logfmt, as upstream 1.11 writes it with
//! Go's `slog.TextHandler` (promslog's default style):
//! `time=2026-01-02T03:04:05.678Z level=INFO source=main.rs:85 msg="node started" node=1`.
//! Keys and values are written bare when they can be, else quoted with Go's escapes.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event format.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        let file = meta.file().map(|f| f.rsplit('/').next().unwrap_or(f));
        let source = match (file, meta.line()) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            _ => meta.target().to_string(),
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = format!("time={time} level={level} source={}", value(&source));
        let _ = write!(line, " msg={}", value(&fields.message));
        line.push_str(&fields.rest);
        writeln!(writer, "{line}")
    }
}

/// An event's message and its other fields, already written as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, text: &str) {
        self.record(field.name(), text.to_string());
    }

    fn record_debug(&mut self, field: &Field, debug: &dyn fmt::Debug) {
        self.record(field.name(), format!("{debug:?}"));
    }
}

impl Fields {
    fn record(&mut self, name: &str, text: String) {
        if name == "message" {
            self.message = text;
        } else {
            let _ = write!(self.rest, " {}={}", key(name), value(&text));
        }
    }
}

/// A key as slog writes it: bare (field names are identifiers).
fn key(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

/// A value bare when it has no space, `=`, quote or control character and is not empty,
/// else quoted with Go's `strconv.Quote` escapes, as slog's text handler does.
fn value(text: &str) -> String {
    let bare = !text.is_empty()
        && !text.chars().any(|c| c == ' ' || c == '=' || c == '"' || c.is_control() || c == '\u{fffd}');
    if bare {
        return text.to_string();
    }
    crate::exposition::text_parse::go_quote(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn values_are_bare_or_quoted_as_slog_writes_them() {
        assert_eq!(value("started"), "started");
        assert_eq!(value("127.0.0.1:9091"), "127.0.0.1:9091");
        assert_eq!(value("node started"), "\"node started\"");
        assert_eq!(value(""), "\"\"");
        assert_eq!(value("a=b"), "\"a=b\"");
        assert_eq!(value("say \"hi\"\nbye"), "\"say \\\"hi\\\"\\nbye\"");
    }
}
