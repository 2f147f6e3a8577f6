//! Config errors that point at the place to fix: file, line, key path, what was expected.
//!
//! Every problem is rendered like a compiler message, one per line:
//!
//! ```text
//! centralino.toml:14: connectors[0].accounts[1].credential: expected a secret reference …
//! ```
//!
//! Lines come from the TOML parser's spans. [`Source`] keeps the text of the file so that
//! a problem found after deserialisation (a duplicate, a missing plugin file, an unset
//! environment variable) can still be placed: a [`KeyPath`] is walked down the spanned
//! document to the line where the key is written, and a span from a serde error is walked
//! up to the key path it belongs to.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value is in the document, written as an admin reads it:
/// `connectors[0].accounts[1].credential`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The document itself.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// This path followed by `key`.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.into()));
        path
    }

    /// This path followed by the array index `index`.
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// Whether this is the document itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Keys that need no quotes in TOML: letters, digits, `-` and `_`.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if at > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line, when the problem is at a place in the file.
    pub line: Option<usize>,
    /// Key path (`connectors[0].name`), when the problem is about a key.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A config file that cannot be used, with every problem found in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
pub struct ConfigError {
    /// The file, as it was named.
    pub file: PathBuf,
    /// The problems, in the order they were found (at least one).
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// A problem with the file as a whole (it cannot be read, for one).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Problem {
                line: None,
                key: None,
                message: message.into(),
            }],
        }
    }

    /// Each problem as one line: `file:line: key: message`.
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|problem| {
                let mut line = self.file.display().to_string();
                if let Some(number) = problem.line {
                    line.push_str(&format!(":{number}"));
                }
                line.push_str(": ");
                if let Some(key) = &problem.key {
                    line.push_str(key);
                    line.push_str(": ");
                }
                line.push_str(&problem.message);
                line
            })
            .collect()
    }
}

impl fmt::Display for ConfigError {
    /// One problem: its line. Several: a count, then one indented line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.lines();
        match lines.as_slice() {
            [one] => f.write_str(one),
            _ => {
                write!(f, "{}: {} problems", self.file.display(), lines.len())?;
                for line in &lines {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
        }
    }
}

/// The text of a config file, to place problems in it.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    file: PathBuf,
    text: String,
}

impl Source {
    pub(crate) fn new(file: &Path, text: String) -> Self {
        Source {
            file: file.to_path_buf(),
            text,
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The file as it was named.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based line of a byte offset.
    fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..end)
            .map_or(0, |before| before.iter().filter(|b| **b == b'\n').count())
            + 1
    }

    /// The line where `path` is written; when the last keys are absent (a missing key),
    /// the line of the deepest one present (the table that lacks it).
    pub(crate) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let document = DeTable::parse(&self.text).ok()?;
        let root = Spanned::new(document.span(), DeValue::Table(document.into_inner()));
        deepest_span(&root, &path.0, None).map(|span| self.line_at(span.start))
    }

    /// The key path of the innermost key or value whose span holds `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::root();
        if let Ok(document) = DeTable::parse(&self.text) {
            locate_in_table(document.get_ref(), offset, &mut path);
        }
        path
    }

    /// A problem at `path`, placed on its line.
    pub(crate) fn problem(&self, path: &KeyPath, message: impl Into<String>) -> Problem {
        Problem {
            line: self.line_of(path),
            key: (!path.is_root()).then(|| path.to_string()),
            message: message.into(),
        }
    }

    /// A problem at a byte range (from the parser or serde).
    pub(crate) fn problem_at(&self, span: Option<Range<usize>>, message: String) -> Problem {
        match span {
            Some(span) => {
                let path = self.path_at(span.start);
                Problem {
                    line: Some(self.line_at(span.start)),
                    key: (!path.is_root()).then(|| path.to_string()),
                    message,
                }
            }
            None => Problem {
                line: None,
                key: None,
                message,
            },
        }
    }

    /// An error made of `problems`, in the order of their lines (those without a line
    /// last).
    pub(crate) fn error(&self, mut problems: Vec<Problem>) -> ConfigError {
        problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        ConfigError {
            file: self.file.clone(),
            problems,
        }
    }
}

/// The span of the deepest node of `path` present under `value`. A key's span is used
/// rather than its value's: for a `[[table]]` it is the header, for `key = value` the
/// start of the line a reader looks at.
fn deepest_span(
    value: &Spanned<DeValue<'_>>,
    path: &[Segment],
    found: Option<Range<usize>>,
) -> Option<Range<usize>> {
    let Some((first, rest)) = path.split_first() else {
        return found;
    };
    match (first, value.get_ref()) {
        (Segment::Key(key), DeValue::Table(table)) => {
            match table
                .iter()
                .find(|(name, _)| name.get_ref().as_ref() == key.as_str())
            {
                Some((name, child)) => deepest_span(child, rest, Some(name.span())),
                None => found,
            }
        }
        (Segment::Index(index), DeValue::Array(items)) => match items.get(*index) {
            Some(item) => deepest_span(item, rest, Some(item.span())),
            None => found,
        },
        _ => found,
    }
}

/// Extends `path` down to the innermost key or value of `table` whose span holds
/// `offset`; returns whether one does.
fn locate_in_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath) -> bool {
    for (name, value) in table.iter() {
        let key = Segment::Key(name.get_ref().to_string());
        if name.span().contains(&offset) {
            path.0.push(key);
            return true;
        }
        path.0.push(key);
        if locate_in_value(value, offset, path) {
            return true;
        }
        path.0.pop();
    }
    false
}

fn locate_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath) -> bool {
    let inside = match value.get_ref() {
        DeValue::Table(table) => locate_in_table(table, offset, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(index, item)| {
            path.0.push(Segment::Index(index));
            let found = locate_in_value(item, offset, path);
            if !found {
                path.0.pop();
            }
            found
        }),
        _ => false,
    };
    // A `[[table]]`'s own span is its header, which holds none of its keys.
    inside || value.span().contains(&offset)
}
