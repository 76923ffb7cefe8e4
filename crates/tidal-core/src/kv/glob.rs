//! Redis glob patterns, as used by KEYS, SCAN MATCH and CONFIG GET.
//!
//! This follows Redis' `stringmatchlen` rule for rule, including its corner
//! cases, so a pattern selects the same keys on tidal as on Redis:
//! `*` any run, `?` one byte, `[abc]` / `[^abc]` / `[a-z]` (reversed ranges
//! allowed, bytes compared as signed C chars), `\x` a literal `x`, an
//! unclosed `[` matching as if closed at the end of the pattern, and the
//! same recursion cap that protects the server from pathological patterns.
//! One consequence worth knowing: the empty string matches only the empty
//! pattern, not even `*`; callers special-case a lone `*` as Redis does.

/// Redis' limit on nested `*` expansions before giving up as "no match".
const MAX_NESTING: u32 = 1000;

/// Whether `s` matches `pattern`, case-sensitively.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, false, &mut skip_longer, 0)
}

/// Whether `s` matches `pattern`, ignoring ASCII case (CONFIG GET).
pub fn glob_match_nocase(pattern: &[u8], s: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, true, &mut skip_longer, 0)
}

fn fold(b: u8, nocase: bool) -> u8 {
    if nocase {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

/// C `char` is signed on the platforms Redis runs on; ranges compare so.
fn signed(b: u8) -> i32 {
    b as i8 as i32
}

fn match_impl(mut p: &[u8], mut s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                // The rest of the pattern matches nowhere in the rest of
                // the string, so no earlier `*` can help by eating more.
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let negate = p.first() == Some(&b'^');
                if negate {
                    p = &p[1..];
                }
                let c = s[0];
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        // Unclosed class: Redis steps back so the shared
                        // advance below lands exactly at the end.
                        break;
                    } else if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == c {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut lo, mut hi) = (signed(fold(p[0], nocase)), signed(fold(p[2], nocase)));
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let cc = signed(fold(c, nocase));
                        p = &p[2..];
                        if cc >= lo && cc <= hi {
                            matched = true;
                        }
                    } else if fold(p[0], nocase) == fold(c, nocase) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                if p.is_empty() {
                    // The class ran to the end of the pattern (see above);
                    // the shared advance must not step past it.
                    break;
                }
            }
            b => {
                let lit = if b == b'\\' && p.len() >= 2 {
                    p = &p[1..];
                    p[0]
                } else {
                    b
                };
                if fold(lit, nocase) != fold(s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn wildcards() {
        // Like Redis, an empty string matches only the empty pattern (KEYS *
        // and SCAN MATCH * special-case "*" before matching).
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a**b", "axxb"));
        assert!(m("a*", "a"));
        assert!(!m("a*b", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(!m("?", ""));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("user:*:name", "user:42:email"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        // `a-]` is a range from ']' to 'a' that swallows the closing bracket.
        assert!(!m("[a-]", "-"));
        assert!(m("[a-]", "_"));
        assert!(m("[abc", "a"), "unclosed class closes at the end");
        assert!(!m("[abc", "ab"));
        assert!(!m("x[", "x"));
        assert!(!m("x[", "xa"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
    }

    #[test]
    fn signed_bytes_in_ranges() {
        // Redis compares as signed chars: 0xff (-1) lies inside [\x80-a].
        assert!(glob_match(b"[\x80-a]", b"\xff"));
        assert!(glob_match(b"[\x80-a]", b"0"));
        assert!(!glob_match(b"[\x80-a]", b"z"));
    }

    #[test]
    fn nocase() {
        assert!(glob_match_nocase(b"MaxMem*", b"maxmemory"));
        assert!(glob_match_nocase(b"[A-Z]x", b"qX"));
        assert!(!glob_match(b"MaxMem*", b"maxmemory"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let p = "a*".repeat(40) + "b";
        let s = "a".repeat(60);
        assert!(!m(&p, &s));
    }

    /// Plain backtracking over the `*`, `?` and literal subset.
    fn backtrack(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| backtrack(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && backtrack(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && backtrack(rest, &s[1..]),
        }
    }

    /// Redis never enters its matching loop for an empty string.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        if s.is_empty() {
            p.is_empty()
        } else {
            backtrack(p, s)
        }
    }

    proptest! {
        #[test]
        fn agrees_with_backtracking(p in "[ab*?]{0,8}", s in "[ab]{0,8}") {
            prop_assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), reference(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn literal_patterns_match_only_themselves(s in "[a-z:]{0,10}", t in "[a-z:]{0,10}") {
            prop_assert_eq!(glob_match(s.as_bytes(), t.as_bytes()), s == t);
        }
    }
}
