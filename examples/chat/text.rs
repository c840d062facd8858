//! Text hygiene at the terminal boundary: user input is cleaned before it reaches the model,
//! model output is made safe to print, lines are read with a length cap, byte sizes are parsed
//! and printed.
use std::io::{self, BufRead};

/// Characters that must never reach the terminal raw: every Unicode control character (C0, DEL,
/// C1) and the bidirectional overrides/isolates, which can make printed text lie about its order.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Removes terminal escape sequences (CSI `ESC [ ... final`, OSC/DCS/APC/PM strings up to BEL or
/// `ESC \`, SS3 `ESC O x`, other `ESC x` pairs) and unsafe characters from user input; newlines and
/// tabs are kept. Returns the clean text and how many sequences or characters were removed.
pub fn clean_input(s: &str) -> (String, usize) {
    let mut out = String::with_capacity(s.len());
    let mut removed = 0;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => {
                removed += 1;
                match it.next() {
                    Some('[') => {
                        // Parameter and intermediate bytes, then one final byte in @..~.
                        for d in it.by_ref() {
                            if ('@'..='~').contains(&d) {
                                break;
                            }
                        }
                    }
                    Some(']' | 'P' | '_' | '^' | 'X') => {
                        while let Some(d) = it.next() {
                            if d == '\u{7}' {
                                break;
                            }
                            if d == '\u{1b}' {
                                if it.peek() == Some(&'\\') {
                                    it.next();
                                }
                                break;
                            }
                        }
                    }
                    Some('O') => {
                        it.next();
                    }
                    _ => {}
                }
            }
            // C1 CSI: like `ESC [`.
            '\u{9b}' => {
                removed += 1;
                for d in it.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if is_unsafe(c) => removed += 1,
            c => out.push(c),
        }
    }
    (out, removed)
}

/// Appends `s` to `out` made safe for a terminal: newlines and tabs kept, carriage returns
/// dropped, other C0 controls and DEL shown as their Unicode control pictures (ESC as `␛`), C1
/// controls and bidirectional overrides as U+FFFD.
pub fn clean_output(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if (c as u32) < 0x20 => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('\u{2421}'),
            c if is_unsafe(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// End of input with nothing read.
    Eof,
    /// A line (in the caller's buffer), without its `\n` or `\r\n`.
    Text,
    /// A line longer than the cap: its first bytes are dropped with the rest; the length in bytes.
    TooLong(usize),
}

/// Reads one line into `buf` (cleared first), keeping at most `cap` bytes: a longer line is
/// consumed to its end and reported as [`Line::TooLong`] without being stored. A last line without
/// a newline counts as a line. Interrupted reads are retried.
pub fn read_line(r: &mut impl BufRead, cap: usize, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            if !any {
                return Ok(Line::Eof);
            }
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if total + take <= cap {
            buf.extend_from_slice(&chunk[..take]);
        }
        total += take;
        r.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if total > cap {
        buf.clear();
        return Ok(Line::TooLong(total));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Line::Text)
}

/// Parses a byte count: a whole number with an optional binary suffix `K`, `M`, `G` (also `KiB`,
/// `KB`, ..., any case; all mean powers of 1024) or `B`. Fractions are allowed with a suffix
/// (`1.5M`). Zero is rejected.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size '{t}': use bytes such as 16M, 512K or 1048576"
            ))
        }
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid size '{t}': use bytes such as 16M, 512K or 1048576"))?;
    let bytes = v * mult as f64;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("invalid size '{t}': must be at least 1 byte"));
    }
    if bytes > (usize::MAX / 2) as f64 {
        return Err(format!("invalid size '{t}': too large"));
    }
    Ok(bytes as usize)
}

/// A byte count for people: `512 B`, `3.2 KiB`, `41.0 MiB`, `1.50 GiB`.
pub fn fmt_bytes(n: usize) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_escapes_removed() {
        assert_eq!(
            clean_input("a\u{1b}[31mred\u{1b}[0m b"),
            ("ared b".into(), 2)
        );
        assert_eq!(clean_input("x\u{1b}]0;title\u{7}y"), ("xy".into(), 1));
        assert_eq!(clean_input("x\u{1b}]0;t\u{1b}\\y"), ("xy".into(), 1));
        assert_eq!(clean_input("up\u{1b}OA"), ("up".into(), 1));
        assert_eq!(
            clean_input("a\u{7}b\u{0}c\u{9b}2Jd\u{202e}e"),
            ("abcde".into(), 4)
        );
        assert_eq!(clean_input("tab\there\nnl"), ("tab\there\nnl".into(), 0));
        assert_eq!(clean_input("\u{1b}"), ("".into(), 1));
    }

    #[test]
    fn output_controls_visible() {
        let mut o = String::new();
        clean_output("a\u{1b}[2Jb\r\n\tc\u{7f}\u{85}\u{202e}é", &mut o);
        assert_eq!(o, "a\u{241b}[2Jb\n\tc\u{2421}\u{fffd}\u{fffd}é");
    }

    #[test]
    fn lines_capped() {
        let mut r = io::Cursor::new(b"hello\r\nworld\n0123456789\nlast".to_vec());
        let mut b = Vec::new();
        assert_eq!(read_line(&mut r, 8, &mut b).unwrap(), Line::Text);
        assert_eq!(b, b"hello");
        assert_eq!(read_line(&mut r, 8, &mut b).unwrap(), Line::Text);
        assert_eq!(b, b"world");
        assert_eq!(read_line(&mut r, 8, &mut b).unwrap(), Line::TooLong(10));
        assert_eq!(read_line(&mut r, 8, &mut b).unwrap(), Line::Text);
        assert_eq!(b, b"last");
        assert_eq!(read_line(&mut r, 8, &mut b).unwrap(), Line::Eof);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(fmt_bytes(3 << 20), "3.0 MiB");
    }
}
