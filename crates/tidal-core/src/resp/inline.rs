//! Splitting an inline command line into arguments, the way Redis'
//! `sdssplitargs` does: blanks separate arguments; `"..."` understands
//! `\n \r \t \b \a \xHH` and `\<any>`; `'...'` understands only `\'`; a
//! closing quote must be followed by a blank or the end of the line.

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits one inline line (without its line ending). `None` means
/// unbalanced quotes, Redis' "Protocol error: unbalanced quotes in request".
/// A NUL byte ends the line, as it ends the C string Redis splits.
pub fn split_inline(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(end) => &line[..end],
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(i);
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if at(i + 1) == Some(b'x')
                            && at(i + 2).and_then(hex).is_some()
                            && at(i + 3).and_then(hex).is_some() =>
                    {
                        let hi = at(i + 2).and_then(hex).unwrap_or(0);
                        let lo = at(i + 3).and_then(hex).unwrap_or(0);
                        cur.push(hi * 16 + lo);
                        i += 3;
                    }
                    Some(b'\\') if at(i + 1).is_some() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(i + 1).is_some_and(|n| !is_space(n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(i + 1).is_some_and(|n| !is_space(n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_inline(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8(a).unwrap()).collect())
    }

    #[test]
    fn plain_words() {
        assert_eq!(split("SET k v").unwrap(), ["SET", "k", "v"]);
        assert_eq!(split("  PING  ").unwrap(), ["PING"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split(" \t ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split(r#"SET "a b" 'c d'"#).unwrap(), ["SET", "a b", "c d"]);
        assert_eq!(split(r#"ECHO "a\x41\n""#).unwrap(), ["ECHO", "aA\n"]);
        assert_eq!(split(r#"ECHO 'it\'s'"#).unwrap(), ["ECHO", "it's"]);
        assert_eq!(split(r#"ECHO 'a\nb'"#).unwrap(), ["ECHO", "a\\nb"]);
        assert_eq!(split(r#"ECHO "\q""#).unwrap(), ["ECHO", "q"]);
        assert_eq!(split(r#"ECHO "\xZZ""#).unwrap(), ["ECHO", "xZZ"]);
        assert_eq!(split(r#"ECHO ab"cd""#).unwrap(), ["ECHO", "abcd"], "a quote opens mid-word");
        assert_eq!(split(r#"ECHO """#).unwrap(), ["ECHO", ""]);
    }

    #[test]
    fn unbalanced() {
        assert_eq!(split(r#"SET "a"b c"#), None);
        assert_eq!(split(r#"SET "k"#), None);
        assert_eq!(split("SET 'k"), None);
        assert_eq!(split("SET 'k'x"), None);
    }

    #[test]
    fn nul_ends_the_line() {
        assert_eq!(split_inline(b"PING\0 junk").unwrap(), vec![b"PING".to_vec()]);
    }
}
