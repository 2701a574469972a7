//! Rules several forms share: the errors-by-field list every form fills, sizes and command
//! words. Object names and mounts are checked by `berth_types::name` and `berth_types::mount`,
//! the daemon's own rules. Pure functions, unit-tested natively.

/// Field → message, for every field that is wrong.
pub type FieldErrors = Vec<(&'static str, String)>;

/// `-m` sizes as Docker reads them (`256m`, `1.5g`, `100KiB`); the parser the CLI uses.
pub fn parse_memory(text: &str) -> Option<u64> {
    berth_types::parse::parse_memory(text).ok()
}

/// Splits a command line into words as a POSIX shell would for plain words and quotes:
/// `sh -c 'echo "a b"'` → `sh`, `-c`, `echo "a b"`. No expansions: the daemon runs the words
/// as they are. Hand-written: the rules needed are a dozen lines, a shell-words crate is not
/// in the dependency tree.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the command ends with a lone \\".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_words() {
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("1k"), Some(1024));
        assert_eq!(parse_memory("1.5g"), Some(3 << 29));
        assert_eq!(parse_memory("64MB"), Some(64 << 20));
        assert_eq!(parse_memory("12x"), None);
        assert_eq!(parse_memory(""), None);
        assert_eq!(split_words("  a\\ b  \"c\\\"d\" '' ").unwrap(), ["a b", "c\"d", ""]);
        assert!(split_words("\"x").is_err());
    }
}
