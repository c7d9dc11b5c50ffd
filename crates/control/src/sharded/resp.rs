//! A small blocking RESP2 client for talking to cluster-mode nodes: replies of any shape
//! (CLUSTER NODES is a bulk string, GETKEYSINSLOT an array), one connection reused for a run of
//! commands (slot migration sends thousands).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status, bulk or integer).
    pub fn text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    }

    /// An array's bulk items (GETKEYSINSLOT).
    pub fn items(self) -> Vec<Vec<u8>> {
        match self {
            Reply::Array(Some(v)) => v
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Bulk(Some(b)) => Some(b),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn connect(port: u16, timeout: Duration) -> Result<Conn, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("127.0.0.1:{}: {}", port, e))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.set_write_timeout(Some(timeout)).ok();
        s.set_nodelay(true).ok();
        let writer = s.try_clone().map_err(|e| e.to_string())?;
        Ok(Conn { reader: BufReader::new(s), writer })
    }

    /// Send one command; an error reply is `Ok(Reply::Error)`, a broken connection `Err`.
    pub fn call_raw(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&req).map_err(|e| e.to_string())?;
        read_reply(&mut self.reader)
    }

    /// Send several commands in one write, then read their replies in order.
    pub fn pipeline(&mut self, cmds: &[Vec<String>]) -> Result<Vec<Reply>, String> {
        let mut req = Vec::new();
        for args in cmds {
            req.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                req.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
            }
        }
        self.writer.write_all(&req).map_err(|e| e.to_string())?;
        cmds.iter().map(|_| read_reply(&mut self.reader)).collect()
    }

    /// Send one command; an error reply becomes `Err` too.
    pub fn call(&mut self, args: &[&str]) -> Result<Reply, String> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        match self.call_raw(&raw)? {
            Reply::Error(e) => Err(e),
            r => Ok(r),
        }
    }
}

/// One command on a fresh connection.
pub fn command(port: u16, args: &[&str], timeout: Duration) -> Result<Reply, String> {
    Conn::connect(port, timeout)?.call(args)
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_reply(r: &mut impl BufRead) -> Result<Reply, String> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let num = || rest.parse::<i64>().map_err(|_| format!("bad reply line {:?}", line));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(num()?),
        "$" => {
            let n = num()?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf).map_err(|e| e.to_string())?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = num()?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(read_reply(r)?);
                }
                Reply::Array(Some(v))
            }
        }
        _ => return Err(format!("bad reply line {:?}", line)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_replies() {
        let mut r = &b"*3\r\n$3\r\nabc\r\n:5\r\n*-1\r\n-ERR x\r\n+OK\r\n$-1\r\n"[..];
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"abc".to_vec())), Reply::Int(5), Reply::Array(None)]))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Error("ERR x".into()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Status("OK".into()));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Bulk(None));
        assert!(read_reply(&mut r).is_err());
    }
}
