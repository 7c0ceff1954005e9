//! A server-sent events parser for streamed provider answers: bytes in, as the network splits
//! them (anywhere, even inside a UTF-8 character or between `\r` and `\n`), events out.
//!
//! It follows the WHATWG event-stream rules the providers rely on: lines end with `\n`, `\r\n` or
//! `\r`; `event:` names the event, `data:` lines are joined with `\n`, a blank line dispatches,
//! lines starting with `:` are comments. `id:` and `retry:` are ignored: a provider stream is
//! never resumed.

/// Longest line accepted, in bytes: a provider's events are small JSON objects, so a longer line
/// means the server is not sending an event stream, and buffering it would only use memory.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, or "message" when there was none.
    pub event: String,
    pub data: String,
}

/// Incremental parser; feed it chunks, then call [`SseParser::finish`].
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

/// The stream is not an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineTooLong;

impl SseParser {
    /// Adds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            // A `\r` at the very end may be the first half of a `\r\n` split across chunks: wait
            // for the next byte before deciding where the line ends.
            let terminator = if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => break,
                }
            } else {
                1
            };
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            start += end + terminator;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    /// Ends the stream: a final event not followed by a blank line is still dispatched, since a
    /// server that closes right after its last `data:` line meant it.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest).into_owned();
            let line = line.strip_suffix('\r').unwrap_or(&line).to_string();
            if let Some(event) = self.line(&line) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let data = self.data.take();
        data.map(|data| SseEvent {
            event: event.unwrap_or_else(|| "message".to_string()),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: a comment\nevent: ping\ndata: {}\n\ndata: first\ndata: second\n\ndata: caf\u{e9} \u{1f600}\n\n";

    fn expected() -> Vec<SseEvent> {
        let e = |event: &str, data: &str| SseEvent {
            event: event.into(),
            data: data.into(),
        };
        vec![
            e("message_start", "{\"a\":1}"),
            e("ping", "{}"),
            e("message", "first\nsecond"),
            e("message", "caf\u{e9} \u{1f600}"),
        ]
    }

    fn parse_in_pieces(bytes: &[u8], size: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in bytes.chunks(size) {
            events.extend(parser.feed(chunk).unwrap());
        }
        events.extend(parser.finish());
        events
    }

    #[test]
    fn parses_whatever_the_chunking_and_line_endings() {
        for text in [
            STREAM.to_string(),
            STREAM.replace('\n', "\r\n"),
            STREAM.replace('\n', "\r"),
        ] {
            for size in 1..=text.len() {
                assert_eq!(parse_in_pieces(text.as_bytes(), size), expected(), "{size} {text:?}");
            }
        }
    }

    #[test]
    fn dispatches_a_last_event_without_blank_line() {
        assert_eq!(
            parse_in_pieces(b"data: [DONE]", 4),
            vec![SseEvent {
                event: "message".into(),
                data: "[DONE]".into()
            }]
        );
        assert_eq!(parse_in_pieces(b"data: x\r", 3)[0].data, "x");
    }

    #[test]
    fn refuses_endless_lines() {
        let mut parser = SseParser::default();
        let chunk = vec![b'a'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..(MAX_LINE_BYTES / chunk.len() + 2) {
            result = parser.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(LineTooLong));
    }
}
