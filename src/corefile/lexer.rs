//! Corefile tokens, as CoreDNS's Caddyfile lexer (coredns/caddy `caddyfile/lexer.go`)
//! makes them: words split on white space, `"..."` quoted (only `\"` is an
//! escape; a quoted token may span lines), `#` to the end of the line a comment.
//! Braces are tokens only when white space surrounds them, as in CoreDNS.

use std::path::Path;
use std::sync::Arc;

/// One token and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub file: Arc<Path>,
    pub line: usize,
    /// Written in quotes: never a brace or a directive keyword.
    pub quoted: bool,
}

/// The tokens of `text`, read from `file`.
pub fn tokens(file: &Arc<Path>, text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut val = String::new();
    let mut start_line = 1;
    let mut comment = false;
    let emit = |out: &mut Vec<Token>, val: &mut String, line: usize, quoted: bool| {
        out.push(Token {
            text: std::mem::take(val),
            file: file.clone(),
            line,
            quoted,
        });
    };
    while let Some(ch) = chars.next() {
        if ch.is_whitespace() {
            if ch == '\n' {
                line += 1;
                comment = false;
            }
            if !val.is_empty() {
                emit(&mut out, &mut val, start_line, false);
            }
            continue;
        }
        if ch == '#' {
            comment = true;
        }
        if comment {
            continue;
        }
        if val.is_empty() {
            start_line = line;
            if ch == '"' {
                // A quoted token: up to the closing quote, newlines counted.
                let mut escaped = false;
                for q in chars.by_ref() {
                    if !escaped && q == '\\' {
                        escaped = true;
                        continue;
                    }
                    if !escaped && q == '"' {
                        break;
                    }
                    if q == '\n' {
                        line += 1;
                    }
                    if escaped && q != '"' {
                        val.push('\\');
                    }
                    val.push(q);
                    escaped = false;
                }
                emit(&mut out, &mut val, start_line, true);
                continue;
            }
        }
        val.push(ch);
    }
    if !val.is_empty() {
        emit(&mut out, &mut val, start_line, false);
    }
    out
}

/// `{$NAME}` (and CoreDNS's `{%NAME%}`) replaced by the environment variable's
/// value, empty when unset, as CoreDNS's `replaceEnvVars`.
pub fn replace_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let once = replace_refs(text, "{%", "%}", lookup);
    replace_refs(&once, "{$", "}", lookup)
}

fn replace_refs(
    text: &str,
    start: &str,
    end: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut s = text.to_string();
    // Bounded: each pass removes one reference (or stops).
    for _ in 0..64 {
        let Some(at) = s.find(start) else {
            break;
        };
        let Some(close) = s[at..].find(end).map(|i| i + at) else {
            break;
        };
        if close <= at + start.len() {
            break;
        }
        let reference = s[at..close + end.len()].to_string();
        let value = lookup(&s[at + start.len()..close]).unwrap_or_default();
        s = s.replace(&reference, &value);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(String, usize)> {
        let file: Arc<Path> = Arc::from(Path::new("Corefile"));
        tokens(&file, input)
            .into_iter()
            .map(|t| (t.text, t.line))
            .collect()
    }

    /// Cases from coredns/caddy `caddyfile/lexer_test.go`.
    #[test]
    fn lexes_as_coredns_does() {
        let t = |s: &str, l| (s.to_string(), l);
        assert_eq!(texts("host:123"), vec![t("host:123", 1)]);
        assert_eq!(
            texts("host:123\n\n\t\tdirective"),
            vec![t("host:123", 1), t("directive", 3)]
        );
        assert_eq!(
            texts("host:123 {\n\tdirective\n}"),
            vec![t("host:123", 1), t("{", 1), t("directive", 2), t("}", 3)]
        );
        assert_eq!(
            texts("host:123 { directive }"),
            vec![t("host:123", 1), t("{", 1), t("directive", 1), t("}", 1)]
        );
        assert_eq!(
            texts("host:123 {\n\tdirective # comment\n\tfoobar # another comment\n}"),
            vec![
                t("host:123", 1),
                t("{", 1),
                t("directive", 2),
                t("foobar", 3),
                t("}", 4)
            ]
        );
        assert_eq!(
            texts("a \"quoted value\" b\nfoobar"),
            vec![t("a", 1), t("quoted value", 1), t("b", 1), t("foobar", 2)]
        );
        assert_eq!(
            texts("A \"quoted \\\"value\\\" inside\" B"),
            vec![t("A", 1), t("quoted \"value\" inside", 1), t("B", 1)]
        );
        assert_eq!(texts("\"don't\\escape\""), vec![t("don't\\escape", 1)]);
        assert_eq!(texts("\"don't\\\\escape\""), vec![t("don't\\\\escape", 1)]);
        assert_eq!(
            texts(
                "A \"quoted value with line\n\t\t\t\t\tbreak inside\" {\n\t\t\t\t\t\tfoobar\n\t\t\t\t\t}"
            ),
            vec![
                t("A", 1),
                t("quoted value with line\n\t\t\t\t\tbreak inside", 1),
                t("{", 2),
                t("foobar", 3),
                t("}", 4)
            ]
        );
        assert_eq!(
            texts("\"C:\\php\\php-cgi.exe\""),
            vec![t("C:\\php\\php-cgi.exe", 1)]
        );
        assert_eq!(
            texts("empty \"\" string"),
            vec![t("empty", 1), t("", 1), t("string", 1)]
        );
        assert_eq!(
            texts("skip those\r\nCR characters"),
            vec![t("skip", 1), t("those", 1), t("CR", 2), t("characters", 2)]
        );
    }

    /// Cases from coredns/caddy `caddyfile/parse_test.go` (`TestEnvironmentReplacement`).
    #[test]
    fn environment_references() {
        let env = |name: &str| match name {
            "PORT" => Some("8080".to_string()),
            "ADDRESS" => Some("servername.com".to_string()),
            _ => None,
        };
        assert_eq!(replace_env(":{$PORT}", &env), ":8080");
        assert_eq!(
            replace_env("{$ADDRESS}:{$PORT}", &env),
            "servername.com:8080"
        );
        assert_eq!(replace_env("{%ADDRESS%}", &env), "servername.com");
        assert_eq!(replace_env("{$MISSING}x", &env), "x");
        assert_eq!(replace_env("{$}", &env), "{$}");
        assert_eq!(replace_env("{$PORT", &env), "{$PORT");
    }
}
