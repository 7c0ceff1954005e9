//! Where each node of a YAML document is: a map from paths such as `automations[1].trigger.cron`
//! to the line and column of the node's value, built from the parser's event stream. Validation
//! errors use it to point at the offending value.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (both 1-based) of every node, by path.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    at: HashMap<String, (usize, usize)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    at: HashMap<String, (usize, usize)>,
}

impl Indexer {
    /// The path of the node that starts now, or `None` if it is a mapping key.
    fn place(&mut self, mark: Marker, key_text: Option<&str>) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                p
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // A key: remember it; the value that follows takes its name.
                    *key = Some(key_text.unwrap_or_default().to_string());
                    return None;
                }
                Some(k) if path.is_empty() => k,
                Some(k) => format!("{path}.{k}"),
            },
        };
        self.at.entry(path.clone()).or_insert((mark.line(), mark.col() + 1));
        Some(path)
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                self.place(mark, Some(&text));
            }
            Event::Alias(_) => {
                self.place(mark, Some(""));
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.place(mark, None) {
                    self.stack.push(Frame::Map { path, key: None });
                } else {
                    // A complex key; index nothing below it.
                    self.stack.push(Frame::Map {
                        path: "?".into(),
                        key: None,
                    });
                }
            }
            Event::SequenceStart(..) => {
                let path = self.place(mark, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Positions {
    /// Indexes `text`; a document that does not parse yields an empty index (serde_yaml reports
    /// the syntax error itself, with its position).
    pub fn index(text: &str) -> Positions {
        let mut indexer = Indexer::default();
        let _ = Parser::new_from_str(text).load(&mut indexer, false);
        Positions { at: indexer.at }
    }

    /// The position of `path`, or of its nearest indexed ancestor, or the start of the file.
    pub fn of(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.at.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}
