//! A small blocking RESP2/RESP3 client for tests, independent of tidal's
//! own codec so the tests check the wire format, not the codec against
//! itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
    Double(String),
    Map(Vec<(Value, Value)>),
    Bool(bool),
    /// RESP3's out-of-band `>` (a pub/sub message).
    Push(Vec<Value>),
}

impl Value {
    pub fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

pub struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: &str) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        Ok(Client { w: s.try_clone()?, r: BufReader::new(s) })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)
    }

    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        self.send_raw(&Self::encode(args))?;
        self.read()
    }

    pub fn cmd(&mut self, args: &[&str]) -> std::io::Result<Value> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd_bytes(&a)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        Ok(l.trim_end_matches("\r\n").to_string())
    }

    pub fn read(&mut self) -> std::io::Result<Value> {
        let l = self.line()?;
        let (t, rest) = l.split_at(1);
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{m}: {l}"));
        Ok(match t {
            "+" => Value::Simple(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(rest.parse().map_err(|_| bad("int"))?),
            "_" => Value::Nil,
            "," => Value::Double(rest.to_string()),
            "#" => Value::Bool(rest == "t"),
            "$" | "=" => {
                let n: i64 = rest.parse().map_err(|_| bad("bulk len"))?;
                if n < 0 {
                    Value::Nil
                } else {
                    let mut b = vec![0; n as usize + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Value::Bulk(b)
                }
            }
            "*" | "~" | ">" => {
                let n: i64 = rest.parse().map_err(|_| bad("array len"))?;
                if n < 0 {
                    Value::Nil
                } else {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(self.read()?);
                    }
                    if t == ">" {
                        Value::Push(v)
                    } else {
                        Value::Array(v)
                    }
                }
            }
            "%" => {
                let n: usize = rest.parse().map_err(|_| bad("map len"))?;
                let mut v = Vec::new();
                for _ in 0..n {
                    let k = self.read()?;
                    v.push((k, self.read()?));
                }
                Value::Map(v)
            }
            _ => return Err(bad("unknown type")),
        })
    }
}
