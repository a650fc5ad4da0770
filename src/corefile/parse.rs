//! Corefile structure, as CoreDNS's Caddyfile parser (coredns/caddy
//! `caddyfile/parse.go`) reads it: server blocks of addresses and a braced
//! list of directives, one per line, each with its arguments and an optional
//! block of sub-directive lines; `import FILE|GLOB|SNIPPET` replaced by what it
//! names, `(snippet) { ... }` defined for import, `{$ENV}` substituted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::CorefileError;
use super::lexer::{self, Token};

/// A server block: its addresses (`.:53`, `example.org`) and directives.
#[derive(Debug, Clone)]
pub struct ServerBlock {
    pub keys: Vec<Token>,
    pub directives: Vec<Directive>,
}

/// One line: a name, the arguments on its line, and the lines of its block.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    pub block: Vec<Directive>,
}

/// Imports expanded at most, as CoreDNS (`maxSnippetExpansions`).
const MAX_EXPANSIONS: usize = 1000;
/// Largest Corefile (or imported file) read: a ConfigMap holds at most 1 MiB.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads the Corefile at `path` and every file it imports.
pub fn parse_file(path: &Path) -> Result<Vec<ServerBlock>, CorefileError> {
    let text = read_text(path).map_err(|message| CorefileError {
        file: path.to_path_buf(),
        line: 0,
        message,
    })?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// A regular file's text, at most [`MAX_FILE_BYTES`]: never a device or FIFO
/// that would block start-up.
fn read_text(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_file() {
        return Err("cannot read: not a regular file".into());
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(format!(
            "cannot read: {} bytes, more than the {MAX_FILE_BYTES} a Corefile may have",
            metadata.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

/// Parses `text` as the Corefile at `path`; `env` looks environment variables up.
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ServerBlock>, CorefileError> {
    let file: Arc<Path> = Arc::from(path);
    let mut parser = Parser {
        tokens: lexer::tokens(&file, text),
        at: 0,
        snippets: HashMap::new(),
        expansions: 0,
        env,
        file: path.to_path_buf(),
    };
    parser.all()
}

struct Parser<'e> {
    tokens: Vec<Token>,
    at: usize,
    snippets: HashMap<String, Vec<Token>>,
    expansions: usize,
    env: &'e dyn Fn(&str) -> Option<String>,
    file: PathBuf,
}

impl Parser<'_> {
    fn error(&self, token: Option<&Token>, message: String) -> CorefileError {
        match token.or_else(|| self.tokens.last()) {
            Some(token) => CorefileError {
                file: token.file.to_path_buf(),
                line: token.line,
                message,
            },
            None => CorefileError {
                file: self.file.clone(),
                line: 0,
                message,
            },
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// Whether the token at `at` starts a line (or a file).
    fn starts_line(&self, at: usize) -> bool {
        let Some(previous) = at.checked_sub(1).and_then(|i| self.tokens.get(i)) else {
            return true;
        };
        let Some(token) = self.tokens.get(at) else {
            return true;
        };
        previous.file != token.file
            || previous.line + previous.text.matches('\n').count() != token.line
    }

    fn is(&self, at: usize, text: &str) -> bool {
        self.tokens
            .get(at)
            .is_some_and(|t| !t.quoted && t.text == text)
    }

    /// Takes the next token, its environment references replaced.
    fn take(&mut self) -> Option<Token> {
        let mut token = self.tokens.get(self.at)?.clone();
        self.at += 1;
        token.text = lexer::replace_env(&token.text, self.env);
        Some(token)
    }

    fn all(&mut self) -> Result<Vec<ServerBlock>, CorefileError> {
        let mut blocks = Vec::new();
        while self.peek().is_some() {
            if self.import_here()? {
                continue;
            }
            let first = self.peek().cloned();
            let keys = self.addresses()?;
            if let [key] = &keys[..]
                && let Some(name) = key.text.strip_prefix('(').and_then(|k| k.strip_suffix(')'))
            {
                self.snippet(key, name.to_string())?;
                continue;
            }
            let directives = if self.is(self.at, "{") {
                self.at += 1;
                self.lines(true)?
            } else {
                // A single server block needs no braces.
                self.lines(false)?
            };
            if keys.is_empty() {
                // Only empty words (`""`): nothing to serve, as CoreDNS skips it,
                // unless directives follow, which could not be served anywhere.
                if directives.is_empty() {
                    continue;
                }
                return Err(self.error(
                    first.as_ref(),
                    "a server block needs an address (e.g. `.:53`)".into(),
                ));
            }
            blocks.push(ServerBlock { keys, directives });
        }
        Ok(blocks)
    }

    /// The addresses of a server block: up to `{` or the end of the line (a
    /// trailing comma continues them on the next).
    fn addresses(&mut self) -> Result<Vec<Token>, CorefileError> {
        let mut keys = Vec::new();
        let mut more = false;
        loop {
            if self.is(self.at, "{") {
                if more {
                    let token = self.peek().cloned();
                    return Err(self.error(
                        token.as_ref(),
                        "expected another address but had '{' - check for an extra comma".into(),
                    ));
                }
                break;
            }
            let Some(mut token) = self.take() else {
                if more {
                    return Err(self.error(None, "unexpected end of file".into()));
                }
                break;
            };
            if let Some(stripped) = token.text.strip_suffix(',') {
                token.text = stripped.to_string();
                more = true;
            } else {
                more = false;
            }
            for part in token.text.split(',').filter(|p| !p.is_empty()) {
                keys.push(Token {
                    text: part.to_string(),
                    ..token.clone()
                });
            }
            if !more && self.starts_line(self.at) {
                break;
            }
        }
        Ok(keys)
    }

    fn snippet(&mut self, key: &Token, name: String) -> Result<(), CorefileError> {
        if self.snippets.contains_key(&name) {
            return Err(self.error(
                Some(key),
                format!("redeclaration of previously declared snippet {name}"),
            ));
        }
        if !self.is(self.at, "{") {
            let token = self.peek().cloned();
            return Err(self.error(token.as_ref(), format!("snippet {name}: expected '{{'")));
        }
        self.at += 1;
        let start = self.at;
        let mut depth = 1;
        while let Some(token) = self.tokens.get(self.at) {
            if !token.quoted && token.text == "}" {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if !token.quoted && token.text == "{" {
                depth += 1;
            }
            self.at += 1;
        }
        if depth != 0 {
            return Err(self.error(Some(key), format!("snippet {name}: missing '}}'")));
        }
        let body = self.tokens[start..self.at].to_vec();
        self.at += 1;
        self.snippets.insert(name, body);
        Ok(())
    }

    /// Directive lines up to the closing `}` (when `braced`) or the end.
    fn lines(&mut self, braced: bool) -> Result<Vec<Directive>, CorefileError> {
        let mut lines = Vec::new();
        loop {
            if self.is(self.at, "}") {
                if !braced {
                    let token = self.peek().cloned();
                    return Err(self.error(
                        token.as_ref(),
                        "unexpected '}' because no matching opening brace".into(),
                    ));
                }
                self.at += 1;
                return Ok(lines);
            }
            if self.peek().is_none() {
                if braced {
                    return Err(self.error(None, "unexpected end of file: expected '}'".into()));
                }
                return Ok(lines);
            }
            if self.import_here()? {
                continue;
            }
            lines.push(self.line()?);
        }
    }

    /// One directive: its name, the arguments on its line, and its block.
    fn line(&mut self) -> Result<Directive, CorefileError> {
        let Some(name) = self.take() else {
            return Err(self.error(None, "unexpected end of file".into()));
        };
        let mut args = Vec::new();
        let mut block = Vec::new();
        while self.peek().is_some() && !self.starts_line(self.at) {
            if self.is(self.at, "}") {
                break;
            }
            if self.is(self.at, "{") {
                self.at += 1;
                block = self.lines(true)?;
                break;
            }
            if let Some(token) = self.take() {
                args.push(token);
            }
        }
        Ok(Directive { name, args, block })
    }

    /// If an `import` starts the line here, replaces it (and its argument) by
    /// what it names; returns whether it did.
    fn import_here(&mut self) -> Result<bool, CorefileError> {
        if !self.is(self.at, "import") || !self.starts_line(self.at) {
            return Ok(false);
        }
        let import = self.tokens[self.at].clone();
        let argument = self
            .tokens
            .get(self.at + 1)
            .filter(|_| !self.starts_line(self.at + 1))
            .cloned();
        let Some(argument) = argument else {
            return Err(self.error(
                Some(&import),
                "import: expected a file, glob or snippet".into(),
            ));
        };
        if self.tokens.get(self.at + 2).is_some() && !self.starts_line(self.at + 2) {
            return Err(self.error(
                Some(&import),
                "import takes only one argument (glob pattern or file)".into(),
            ));
        }
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            return Err(self.error(
                Some(&import),
                format!("maximum import depth ({MAX_EXPANSIONS}) exceeded"),
            ));
        }
        let pattern = lexer::replace_env(&argument.text, self.env);
        let imported = match self.snippets.get(&pattern) {
            Some(tokens) => tokens.clone(),
            None => self.import_files(&import, &pattern)?,
        };
        self.tokens.splice(self.at..self.at + 2, imported);
        Ok(true)
    }

    /// The tokens of the files `pattern` names (relative to the importing file);
    /// one `*` is allowed in the file name, as CoreDNS allows one wildcard.
    fn import_files(&self, import: &Token, pattern: &str) -> Result<Vec<Token>, CorefileError> {
        let base = import.file.parent().unwrap_or(Path::new("."));
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let files = matching_files(&full)
            .map_err(|message| self.error(Some(import), format!("import {pattern}: {message}")))?;
        let mut tokens = Vec::new();
        for file in files {
            let text = read_text(&file).map_err(|message| {
                self.error(
                    Some(import),
                    format!("could not import {}: {message}", file.display()),
                )
            })?;
            let file: Arc<Path> = Arc::from(file.as_path());
            tokens.extend(lexer::tokens(&file, &text));
        }
        Ok(tokens)
    }
}

/// The files `pattern` names: itself (which must exist), or with one `*` in the
/// file name, every regular file matching, sorted (none is not an error).
fn matching_files(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let wildcards = text.matches('*').count() + text.matches('?').count();
    if wildcards == 0 && !text.contains('[') {
        if pattern.is_dir() {
            return Err("is a directory".into());
        }
        if !pattern.exists() {
            return Err("file to import not found".into());
        }
        return Ok(vec![pattern.to_path_buf()]);
    }
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Err("not a file pattern".into());
    };
    let name = name.to_string_lossy();
    let dir_text = dir.to_string_lossy();
    if wildcards > 1 || text.contains('[') || dir_text.contains('*') || dir_text.contains('?') {
        return Err("a pattern may only contain one wildcard (*), in the file name".into());
    }
    let Some((prefix, suffix)) = name.split_once('*') else {
        return Err("only the * wildcard is supported".into());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A missing directory matches nothing, as a glob does.
        Err(_) => return Ok(Vec::new()),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.len() >= prefix.len() + suffix.len()
                    && n.starts_with(prefix)
                    && n.ends_with(suffix)
            }) && path.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> Result<Vec<ServerBlock>, CorefileError> {
        parse(Path::new("Corefile"), text, &|name| {
            (name == "ZONE").then(|| "cluster.local".to_string())
        })
    }

    fn shape(blocks: &[ServerBlock]) -> Vec<(Vec<String>, Vec<String>)> {
        blocks
            .iter()
            .map(|b| {
                (
                    b.keys.iter().map(|k| k.text.clone()).collect(),
                    b.directives.iter().map(render).collect(),
                )
            })
            .collect()
    }

    fn render(d: &Directive) -> String {
        let mut s = d.name.text.clone();
        for a in &d.args {
            s.push(' ');
            s.push_str(&a.text);
        }
        if !d.block.is_empty() {
            s.push_str(" {");
            for line in &d.block {
                s.push(' ');
                s.push_str(&render(line));
                s.push(';');
            }
            s.push_str(" }");
        }
        s
    }

    #[test]
    fn kubeadm_corefile() {
        let text = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n";
        let parsed = blocks(text).unwrap();
        assert_eq!(
            shape(&parsed),
            vec![(
                vec![".:53".to_string()],
                vec![
                    "errors".to_string(),
                    "health { lameduck 5s; }".into(),
                    "ready".into(),
                    "kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30; }".into(),
                    "prometheus :9153".into(),
                    "forward . /etc/resolv.conf { max_concurrent 1000; }".into(),
                    "cache 30".into(),
                    "loop".into(),
                    "reload".into(),
                    "loadbalance".into(),
                ]
            )]
        );
        assert_eq!(parsed[0].directives[3].block[2].name.line, 10);
    }

    /// Shapes from coredns/caddy `caddyfile/parse_test.go` (`TestParseOneAndImport`,
    /// `TestParseAll`, `TestEnvironmentReplacement`).
    #[test]
    fn server_blocks_as_coredns_parses_them() {
        type Blocks<'a> = Vec<(Vec<&'a str>, Vec<&'a str>)>;
        let cases: &[(&str, Blocks)] = &[
            ("localhost", vec![(vec!["localhost"], vec![])]),
            ("localhost\ndir1", vec![(vec!["localhost"], vec!["dir1"])]),
            (
                "localhost:1234\n  dir1 foo bar",
                vec![(vec!["localhost:1234"], vec!["dir1 foo bar"])],
            ),
            (
                "localhost {\n    dir1\n}",
                vec![(vec!["localhost"], vec!["dir1"])],
            ),
            (
                "localhost:1234 {\n    dir1 foo bar\n    dir2\n}",
                vec![(vec!["localhost:1234"], vec!["dir1 foo bar", "dir2"])],
            ),
            (
                "http://localhost https://localhost\ndir1 foo bar",
                vec![(
                    vec!["http://localhost", "https://localhost"],
                    vec!["dir1 foo bar"],
                )],
            ),
            (
                "http://localhost https://localhost {\n    dir1 foo bar\n}",
                vec![(
                    vec!["http://localhost", "https://localhost"],
                    vec!["dir1 foo bar"],
                )],
            ),
            (
                "http://localhost, https://localhost {\n    dir1 foo bar\n}",
                vec![(
                    vec!["http://localhost", "https://localhost"],
                    vec!["dir1 foo bar"],
                )],
            ),
            (
                "http://localhost,\n    https://localhost {\n    dir1 foo bar\n}",
                vec![(
                    vec!["http://localhost", "https://localhost"],
                    vec!["dir1 foo bar"],
                )],
            ),
            (
                "localhost\ndir1 {\n    foo\n    bar baz\n}\ndir2",
                vec![(vec!["localhost"], vec!["dir1 { foo; bar baz; }", "dir2"])],
            ),
            (
                "a.com {\n  dir1\n}\nb.com {\n  dir2\n}",
                vec![(vec!["a.com"], vec!["dir1"]), (vec!["b.com"], vec!["dir2"])],
            ),
            (
                "(common) {\n  dir1 x\n}\na.com {\n  import common\n  dir2\n}",
                vec![(vec!["a.com"], vec!["dir1 x", "dir2"])],
            ),
            (
                "{$ZONE}:53 {\n  kubernetes {$ZONE}\n}",
                vec![(vec!["cluster.local:53"], vec!["kubernetes cluster.local"])],
            ),
            ("", vec![]),
            // Found by the config fuzz target: empty words only.
            ("\"\"\"", vec![]),
        ];
        for (text, want) in cases {
            let got = shape(&blocks(text).unwrap_or_else(|e| panic!("{text:?}: {e}")));
            let want: Vec<(Vec<String>, Vec<String>)> = want
                .iter()
                .map(|(k, d)| {
                    (
                        k.iter().map(|s| s.to_string()).collect(),
                        d.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn malformed_corefiles_name_the_line() {
        let cases = [
            ("localhost {\n  dir1\n", 2, "expected '}'"),
            (
                "localhost {\n  dir1 }\n}\n}",
                4,
                "no matching opening brace",
            ),
            ("a.com, {\n}", 1, "extra comma"),
            ("a.com {\n  import\n}", 2, "import: expected"),
            ("a.com {\n  import a b\n}", 2, "only one argument"),
            ("a.com {\n  import missing.conf\n}", 2, "not found"),
            ("(s) {\n x\n}\n(s) {\n y\n}", 4, "redeclaration"),
            (
                "(loop) {\n import loop\n}\na {\n import loop\n}",
                2,
                "maximum import depth",
            ),
            ("\"\" {\n  dir1\n}", 1, "needs an address"),
        ];
        for (text, line, message) in cases {
            let error = blocks(text).expect_err(text);
            assert_eq!(error.line, line, "{text:?}: {error}");
            assert!(error.message.contains(message), "{text:?}: {error}");
        }
    }

    #[test]
    fn imports_files_and_globs_relative_to_the_importing_file() {
        let dir = std::env::temp_dir().join(format!("corefile-import-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("custom")).unwrap();
        std::fs::write(dir.join("custom/b.override"), "log\n").unwrap();
        std::fs::write(dir.join("custom/a.override"), "whoami\n").unwrap();
        std::fs::write(
            dir.join("custom/c.server"),
            "other.example:53 {\n  whoami\n}\n",
        )
        .unwrap();
        let main = dir.join("Corefile");
        std::fs::write(
            &main,
            ".:53 {\n  errors\n  import custom/*.override\n}\nimport custom/*.server\nimport none/*.server\n",
        )
        .unwrap();
        let parsed = parse_file(&main).unwrap();
        assert_eq!(
            shape(&parsed),
            vec![
                (
                    vec![".:53".to_string()],
                    vec!["errors".to_string(), "whoami".into(), "log".into()]
                ),
                (
                    vec!["other.example:53".to_string()],
                    vec!["whoami".to_string()]
                ),
            ]
        );
        // Lines of imported directives name their own file.
        assert!(
            parsed[0].directives[1]
                .name
                .file
                .ends_with("custom/a.override")
        );
        assert_eq!(parsed[0].directives[1].name.line, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
