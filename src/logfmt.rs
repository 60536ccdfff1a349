//! `--log.format=logfmt`: one line per event in logfmt, as upstream 1.11 writes it: Go's
//! `slog.TextHandler` with promslog's go-kit style, which pushgateway's `main.go` selects:
//! `ts=2026-01-02T03:04:05.678Z level=info caller=main.rs:85 msg="node started" node=1`
//! (at `--log.level=debug` the caller names its function: `file(function):line`; here the
//! module stands for it). Keys and values are written bare when they can be, else quoted
//! with Go's escapes.

use std::fmt::{self, Write as _};

use tracing::field::Visit;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `--log.format`: logfmt, or JSON (slog's JSON handler in the same
/// style: `{"ts":"…","level":"info","caller":"main.rs:85","msg":"node started","node":1}`).
pub struct Logfmt {
    /// `--log.level=debug`: the caller names its module too.
    pub debug: bool,
    /// `--log.format=json`.
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        let file = meta.file().map(|f| f.rsplit('/').next().unwrap_or(f));
        let module = meta.module_path().map(|m| m.rsplit("::").next().unwrap_or(m));
        let caller = match (file, meta.line(), module) {
            (Some(file), Some(line), Some(module)) if self.debug => format!("{file}({module}):{line}"),
            (Some(file), Some(line), _) => format!("{file}:{line}"),
            _ => meta.target().to_string(),
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut pairs = vec![
            ("ts", Field::Text(time)),
            ("level", Field::Text(level.to_string())),
            ("caller", Field::Text(caller)),
            ("msg", Field::Text(std::mem::take(&mut fields.message))),
        ];
        pairs.extend(fields.rest.iter().map(|(k, v)| (key(k), v.clone())));
        let line = if self.json { json_line(&pairs) } else { logfmt_line(&pairs) };
        writeln!(writer, "{line}")
    }
}

/// A field's value: text, or a number or boolean (bare in JSON).
#[derive(Clone)]
enum Field {
    Text(String),
    Raw(String),
}

fn logfmt_line(pairs: &[(&str, Field)]) -> String {
    let mut line = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let text = match v {
            Field::Text(t) | Field::Raw(t) => t,
        };
        let _ = write!(line, "{}{k}={}", if i > 0 { " " } else { "" }, value(text));
    }
    line
}

fn json_line(pairs: &[(&str, Field)]) -> String {
    let text = |t: &str| serde_json::Value::String(t.to_string()).to_string();
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| match v {
            Field::Text(t) => format!("{}:{}", text(k), text(t)),
            Field::Raw(t) => format!("{}:{t}", text(k)),
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// An event's message and its other fields, in order.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, Field)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, text: &str) {
        self.record(field.name(), Field::Text(text.to_string()));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, v: i64) {
        self.record(field.name(), Field::Raw(v.to_string()));
    }

    fn record_u64(&mut self, field: &tracing::field::Field, v: u64) {
        self.record(field.name(), Field::Raw(v.to_string()));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, v: bool) {
        self.record(field.name(), Field::Raw(v.to_string()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, debug: &dyn fmt::Debug) {
        self.record(field.name(), Field::Text(format!("{debug:?}")));
    }
}

impl Fields {
    fn record(&mut self, name: &'static str, v: Field) {
        match (name, v) {
            ("message", Field::Text(text) | Field::Raw(text)) => self.message = text,
            (name, v) => self.rest.push((name, v)),
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

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn logfmt_and_json_lines() {
        let pairs = vec![
            ("ts", Field::Text("2026-01-02T03:04:05.678Z".into())),
            ("level", Field::Text("info".into())),
            ("caller", Field::Text("main.rs:85".into())),
            ("msg", Field::Text("node started".into())),
            ("node", Field::Raw("1".into())),
            ("path", Field::Text("/tmp/a b".into())),
        ];
        assert_eq!(
            logfmt_line(&pairs),
            "ts=2026-01-02T03:04:05.678Z level=info caller=main.rs:85 msg=\"node started\" node=1 path=\"/tmp/a b\""
        );
        assert_eq!(
            json_line(&pairs),
            "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"info\",\"caller\":\"main.rs:85\",\
             \"msg\":\"node started\",\"node\":1,\"path\":\"/tmp/a b\"}"
        );
    }
}
