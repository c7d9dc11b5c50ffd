//! Typed command errors. A parser or helper returns a [`CommandError`]; the handler writes it
//! with [`Ctx::fail`](crate::Ctx::fail) (or [`ErrorReply::fail`] on a bare reply buffer).
//! `Display` is exactly the error reply Redis sends, without the leading `-`.

use crate::util::{ERR_NOT_FLOAT, ERR_NOT_INT, ERR_NO_KEY, ERR_OVERFLOW, ERR_SYNTAX, ERR_WRONGTYPE};
use ferrocache_protocol::resp::ReplyBuf;

/// A command's error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `ERR syntax error`.
    #[error("{}", ERR_SYNTAX)]
    Syntax,
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`.
    #[error("{}", ERR_WRONGTYPE)]
    WrongType,
    /// `ERR value is not an integer or out of range`.
    #[error("{}", ERR_NOT_INT)]
    NotInt,
    /// `ERR value is not a valid float`.
    #[error("{}", ERR_NOT_FLOAT)]
    NotFloat,
    /// `ERR no such key`.
    #[error("{}", ERR_NO_KEY)]
    NoKey,
    /// `ERR increment or decrement would overflow`.
    #[error("{}", ERR_OVERFLOW)]
    Overflow,
    /// `ERR wrong number of arguments for '<command>' command`.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    /// Any other fixed text.
    #[error("{0}")]
    Static(&'static str),
    /// Any other text, built at run time.
    #[error("{0}")]
    Custom(String),
}

impl CommandError {
    /// The error text when it needs no formatting (every variant but `WrongArity`).
    pub fn as_static(&self) -> Option<&str> {
        Some(match self {
            CommandError::Syntax => ERR_SYNTAX,
            CommandError::WrongType => ERR_WRONGTYPE,
            CommandError::NotInt => ERR_NOT_INT,
            CommandError::NotFloat => ERR_NOT_FLOAT,
            CommandError::NoKey => ERR_NO_KEY,
            CommandError::Overflow => ERR_OVERFLOW,
            CommandError::Static(s) => s,
            CommandError::Custom(s) => s,
            CommandError::WrongArity(_) => return None,
        })
    }
}

impl From<&'static str> for CommandError {
    fn from(s: &'static str) -> Self {
        CommandError::Static(s)
    }
}

impl From<String> for CommandError {
    fn from(s: String) -> Self {
        CommandError::Custom(s)
    }
}

/// Writing a [`CommandError`] as an error reply.
pub trait ErrorReply {
    fn fail(&mut self, e: &CommandError);
}

impl ErrorReply for ReplyBuf {
    fn fail(&mut self, e: &CommandError) {
        match e.as_static() {
            Some(s) => self.error(s),
            None => self.error(&e.to_string()),
        }
    }
}

/// The value of `r`, or `None` after writing its error to `out`:
/// `let Some(v) = or_reply(out, read_list(&mut db, key)) else { return };`.
pub fn or_reply<T>(out: &mut ReplyBuf, r: Result<T, CommandError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            out.fail(&e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_redis_replies() {
        let cases = [
            (CommandError::Syntax, "ERR syntax error"),
            (CommandError::WrongType, "WRONGTYPE Operation against a key holding the wrong kind of value"),
            (CommandError::NotInt, "ERR value is not an integer or out of range"),
            (CommandError::NotFloat, "ERR value is not a valid float"),
            (CommandError::NoKey, "ERR no such key"),
            (CommandError::Overflow, "ERR increment or decrement would overflow"),
            (CommandError::WrongArity("xadd"), "ERR wrong number of arguments for 'xadd' command"),
            (CommandError::Static("ERR x"), "ERR x"),
            (CommandError::Custom("ERR y 1".into()), "ERR y 1"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            if let Some(s) = e.as_static() {
                assert_eq!(s, text);
            }
            let mut out = ReplyBuf::new(false);
            out.fail(&e);
            assert_eq!(out.buf, format!("-{text}\r\n").into_bytes());
        }
    }
}
