//! Dockerfiles: parsing (by the `parse-dockerfile` crate, which knows the grammar, parser
//! directives, continuations, comments, heredocs and JSON forms) into the builder's own
//! instructions with line numbers, and the word processing Docker applies to arguments: quotes,
//! the escape character, and variable substitution (`$VAR`, `${VAR}`, `${VAR:-word}`,
//! `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}`).

use parse_dockerfile::{Command, Flag, HealthcheckArguments, Instruction, JsonOrStringArray, Source};

use crate::error::{Error, Result};

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The file name errors name (its path in the context).
    pub file: String,
    /// The escape character (`\`, or `` ` `` by the `escape` directive).
    pub escape: char,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines.
    pub meta_args: Vec<Step>,
    pub stages: Vec<StageDef>,
}

/// One stage: `FROM base [AS name]` and its instructions.
#[derive(Debug, Clone)]
pub struct StageDef {
    /// Lowercased, as Docker compares stage names.
    pub name: Option<String>,
    /// The base as written (substituted with the meta args when the stage starts).
    pub base: String,
    pub line: usize,
    /// The `FROM` line as written, for the step display.
    pub text: String,
    pub steps: Vec<Step>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    /// The instruction as written, continuations joined (for the step display).
    pub text: String,
    pub inst: Inst,
}

/// Shell form (run by the SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Shell(String),
    Exec(Vec<String>),
}

/// COPY and ADD.
#[derive(Debug, Clone)]
pub struct CopySpec {
    pub add: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// The builder's instructions (arguments not yet substituted).
#[derive(Debug, Clone)]
pub enum Inst {
    Run(Cmd),
    Copy(CopySpec),
    Env(String),
    Arg(String),
    Label(String),
    Workdir(String),
    User(String),
    Entrypoint(Cmd),
    Cmd(Cmd),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck {
        options: Vec<(String, String)>,
        test: Option<Cmd>,
    },
    /// The trigger instruction's text, stored in the config.
    OnBuild(String),
    Shell(Vec<String>),
    Maintainer(String),
}

/// 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Docker's refusal of `ONBUILD ONBUILD`.
const CHAINED_ONBUILD: &str = "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed";

/// The crate's message without its own location suffix (ours leads).
fn crate_message(e: &parse_dockerfile::Error) -> String {
    let message = e.to_string();
    message.split(" at line ").next().unwrap_or(&message).to_string()
}

/// One instruction on its own, as `import --change` gives them: parsed as the only instruction
/// of a stage, so that it means what it would in a Dockerfile. Errors name no file or line.
pub fn parse_instruction(text: &str) -> Result<Inst> {
    // The crate refuses a chained ONBUILD in words of its own; Docker's are these.
    let mut words = text.split_whitespace().map(str::to_ascii_uppercase);
    if words.next().as_deref() == Some("ONBUILD") && words.next().as_deref() == Some("ONBUILD") {
        return Err(Error::InvalidInput(CHAINED_ONBUILD.into()));
    }
    let full = format!("FROM scratch\n{text}\n");
    let parsed = parse_dockerfile::parse(&full).map_err(|e| Error::InvalidInput(crate_message(&e)))?;
    match parsed.instructions.as_slice() {
        [_from, instruction] => {
            convert(instruction, &full, '\\').map_err(|(_, message)| Error::InvalidInput(message))
        }
        _ => Err(Error::InvalidInput(format!("{:?} is not one instruction", text.trim()))),
    }
}

/// Parses `text`, the Dockerfile `file`.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile> {
    let parsed = parse_dockerfile::parse(text).map_err(|e| {
        let message = crate_message(&e);
        if e.line() == 0 {
            Error::InvalidInput(format!("{file}: {message}"))
        } else {
            Error::InvalidInput(format!("{file}:{}: {message}", e.line()))
        }
    })?;
    let escape = parsed.parser_directives.escape.as_ref().map(|d| d.value.value).unwrap_or('\\');
    let err = |pos: usize, message: String| {
        Error::InvalidInput(format!("{file}:{}: {message}", line_of(text, pos)))
    };

    let mut dockerfile =
        Dockerfile { file: file.to_string(), escape, meta_args: Vec::new(), stages: Vec::new() };
    for instruction in &parsed.instructions {
        let span = instruction_span(instruction);
        // The parts end before a closing `]` or quote; the instruction runs to its line's end.
        let span = span.start..text[span.end..].find('\n').map(|i| span.end + i).unwrap_or(text.len());
        let line = line_of(text, span.start);
        let raw = display_text(&text[span.clone()], escape);
        let inst = match instruction {
            Instruction::From(from) => {
                for flag in &from.options {
                    if flag.name.value != "platform" {
                        return Err(err(
                            flag.flag_span().start,
                            format!("unknown flag: --{}", flag.name.value),
                        ));
                    }
                }
                let name = from.as_.as_ref().map(|(_, n)| n.value.to_lowercase());
                if let Some(n) = &name {
                    let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                    if !valid {
                        return Err(err(span.start, format!("invalid name for build stage: {n:?}, name can't start with a number or contain symbols")));
                    }
                }
                dockerfile.stages.push(StageDef {
                    name,
                    base: from.image.value.to_string(),
                    line,
                    text: raw,
                    steps: Vec::new(),
                });
                continue;
            }
            other => convert(other, text, escape).map_err(|(pos, m)| err(pos, m))?,
        };
        let step = Step { line, text: raw, inst };
        match dockerfile.stages.last_mut() {
            Some(stage) => stage.steps.push(step),
            None => match step.inst {
                Inst::Arg(_) => dockerfile.meta_args.push(step),
                _ => return Err(err(span.start, "no build stage in current context".into())),
            },
        }
    }
    if dockerfile.stages.is_empty() {
        return Err(Error::InvalidInput(format!("{file}: file with no instructions")));
    }
    Ok(dockerfile)
}

fn instruction_span(i: &Instruction<'_>) -> std::ops::Range<usize> {
    // The crate has spans per part; the instruction runs from its keyword to its last part.
    let (start, end) = match i {
        Instruction::Add(x) => (x.add.span.start, x.dest.span.end),
        Instruction::Arg(x) => (x.arg.span.start, x.arguments.span.end),
        Instruction::Cmd(x) => (x.cmd.span.start, command_end(&x.arguments)),
        Instruction::Copy(x) => (x.copy.span.start, x.dest.span.end),
        Instruction::Entrypoint(x) => (x.entrypoint.span.start, command_end(&x.arguments)),
        Instruction::Env(x) => (x.env.span.start, x.arguments.span.end),
        Instruction::Expose(x) => {
            (x.expose.span.start, x.arguments.last().map(|a| a.span.end).unwrap_or(x.expose.span.end))
        }
        Instruction::From(x) => {
            (x.from.span.start, x.as_.as_ref().map(|(_, n)| n.span.end).unwrap_or(x.image.span.end))
        }
        Instruction::Healthcheck(x) => (
            x.healthcheck.span.start,
            match &x.arguments {
                HealthcheckArguments::Cmd { arguments, .. } => command_end(arguments),
                HealthcheckArguments::None { none, .. } => none.span.end,
                _ => x.healthcheck.span.end,
            },
        ),
        Instruction::Label(x) => (x.label.span.start, x.arguments.span.end),
        Instruction::Maintainer(x) => (x.maintainer.span.start, x.name.span.end),
        Instruction::Onbuild(x) => (x.onbuild.span.start, instruction_span(&x.instruction).end),
        Instruction::Run(x) => (x.run.span.start, command_end(&x.arguments)),
        Instruction::Shell(x) => {
            (x.shell.span.start, x.arguments.last().map(|a| a.span.end).unwrap_or(x.shell.span.end))
        }
        Instruction::Stopsignal(x) => (x.stopsignal.span.start, x.arguments.span.end),
        Instruction::User(x) => (x.user.span.start, x.arguments.span.end),
        Instruction::Volume(x) => (
            x.volume.span.start,
            match &x.arguments {
                JsonOrStringArray::Json(j) => j.span.end,
                JsonOrStringArray::String(s) => s.last().map(|a| a.span.end).unwrap_or(x.volume.span.end),
            },
        ),
        Instruction::Workdir(x) => (x.workdir.span.start, x.arguments.span.end),
        _ => (0, 0),
    };
    start..end.max(start)
}

fn command_end(c: &Command<'_>) -> usize {
    match c {
        Command::Exec(e) => e.span.end,
        Command::Shell(s) => s.span.end,
        _ => 0,
    }
}

/// The instruction text on one line: continuations (escape + newline) and the comment lines
/// between them dropped, runs of whitespace kept as written.
fn display_text(raw: &str, escape: char) -> String {
    join_continuations(raw, escape).trim().to_string()
}

/// Removes line continuations as Docker does: an escape character at the end of a line joins
/// the next line; empty and comment lines inside a continued instruction are dropped.
pub fn join_continuations(raw: &str, escape: char) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut lines = raw.split('\n').peekable();
    let mut continued = false;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if continued && (trimmed.is_empty() || trimmed.starts_with('#')) && lines.peek().is_some() {
            continue;
        }
        let body = line.trim_end_matches(['\r', ' ', '\t']);
        if let Some(stripped) = body.strip_suffix(escape) {
            // An escaped escape character (`\\`) at the end is not a continuation.
            if !stripped.ends_with(escape) || escape != '\\' {
                out.push_str(stripped);
                continued = true;
                continue;
            }
        }
        out.push_str(line);
        if lines.peek().is_some() {
            out.push('\n');
        }
        continued = false;
    }
    out
}

type ConvertError = (usize, String);

fn flags(options: &[Flag<'_>], allowed: &[&str]) -> std::result::Result<Vec<(String, String)>, ConvertError> {
    let mut out = Vec::new();
    for flag in options {
        let name = flag.name.value.to_string();
        if !allowed.contains(&name.as_str()) {
            return Err((flag.flag_span().start, format!("unknown flag: --{name}")));
        }
        out.push((name, flag.value.as_ref().map(|v| v.value.to_string()).unwrap_or_default()));
    }
    Ok(out)
}

fn cmd(c: &Command<'_>, escape: char) -> Cmd {
    match c {
        Command::Exec(e) => Cmd::Exec(e.value.iter().map(|s| s.value.to_string()).collect()),
        Command::Shell(s) => Cmd::Shell(join_continuations(s.value, escape).trim().to_string()),
        _ => Cmd::Shell(String::new()),
    }
}

fn convert(i: &Instruction<'_>, text: &str, escape: char) -> std::result::Result<Inst, ConvertError> {
    let span = instruction_span(i);
    Ok(match i {
        Instruction::Run(r) => {
            if let Some(f) = r.options.first() {
                return Err((f.flag_span().start, format!("unsupported flag: --{}", f.name.value)));
            }
            if !r.here_docs.is_empty() {
                // Heredocs (`RUN <<EOF`): the document becomes the script the shell reads.
                let script: String = r.here_docs.iter().map(|h| h.value.to_string()).collect();
                return Ok(Inst::Run(Cmd::Shell(script)));
            }
            Inst::Run(cmd(&r.arguments, escape))
        }
        Instruction::Add(a) => copy_spec(true, &a.options, &a.src, &a.dest.value)?,
        Instruction::Copy(c) => copy_spec(false, &c.options, &c.src, &c.dest.value)?,
        Instruction::Env(e) => Inst::Env(e.arguments.value.to_string()),
        Instruction::Arg(a) => Inst::Arg(a.arguments.value.to_string()),
        Instruction::Label(l) => Inst::Label(l.arguments.value.to_string()),
        Instruction::Workdir(w) => Inst::Workdir(w.arguments.value.to_string()),
        Instruction::User(u) => Inst::User(u.arguments.value.to_string()),
        Instruction::Entrypoint(e) => Inst::Entrypoint(cmd(&e.arguments, escape)),
        Instruction::Cmd(c) => Inst::Cmd(cmd(&c.arguments, escape)),
        Instruction::Expose(e) => Inst::Expose(e.arguments.iter().map(|a| a.value.to_string()).collect()),
        Instruction::Volume(v) => Inst::Volume(match &v.arguments {
            JsonOrStringArray::Json(j) => j.value.iter().map(|a| a.value.to_string()).collect(),
            JsonOrStringArray::String(s) => s.iter().map(|a| a.value.to_string()).collect(),
        }),
        Instruction::Stopsignal(s) => Inst::StopSignal(s.arguments.value.to_string()),
        Instruction::Healthcheck(h) => {
            let options =
                flags(&h.options, &["interval", "timeout", "start-period", "start-interval", "retries"])?;
            let test = match &h.arguments {
                HealthcheckArguments::Cmd { arguments, .. } => Some(cmd(arguments, escape)),
                _ => None,
            };
            Inst::Healthcheck { options, test }
        }
        Instruction::Onbuild(o) => {
            let inner = instruction_span(&o.instruction);
            let inner =
                inner.start..text[inner.end..].find('\n').map(|i| inner.end + i).unwrap_or(text.len());
            let trigger = display_text(&text[inner], escape);
            let keyword = trigger.split_whitespace().next().unwrap_or("").to_uppercase();
            match keyword.as_str() {
                "ONBUILD" => return Err((span.start, CHAINED_ONBUILD.into())),
                "FROM" | "MAINTAINER" => {
                    return Err((span.start, format!("{keyword} isn't allowed as an ONBUILD trigger")))
                }
                _ => {}
            }
            Inst::OnBuild(trigger)
        }
        Instruction::Shell(s) => Inst::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect()),
        Instruction::Maintainer(m) => Inst::Maintainer(m.name.value.to_string()),
        Instruction::From(_) => unreachable!("FROM is handled by the caller"),
        _ => return Err((span.start, "unsupported instruction".into())),
    })
}

fn copy_spec(
    add: bool,
    options: &[Flag<'_>],
    sources: &[Source<'_>],
    dest: &str,
) -> std::result::Result<Inst, ConvertError> {
    let allowed: &[&str] = if add {
        &["chown", "chmod", "link", "checksum", "keep-git-dir"]
    } else {
        &["from", "chown", "chmod", "link", "parents", "exclude"]
    };
    let mut spec =
        CopySpec { add, from: None, chown: None, chmod: None, sources: Vec::new(), dest: dest.to_string() };
    for (name, value) in flags(options, allowed)? {
        match name.as_str() {
            "from" => spec.from = Some(value),
            "chown" => spec.chown = Some(value),
            "chmod" => spec.chmod = Some(value),
            // --link changes how layers are stacked, not what they hold; accepted and ignored.
            "link" => {}
            other => {
                let pos =
                    options.iter().find(|f| f.name.value == other).map(|f| f.flag_span().start).unwrap_or(0);
                return Err((pos, format!("unsupported flag: --{other}")));
            }
        }
    }
    for source in sources {
        match source {
            Source::Path(p) => spec.sources.push(p.value.to_string()),
            _ => return Err((0, "heredoc sources of COPY/ADD are not supported".into())),
        }
    }
    Ok(Inst::Copy(spec))
}

/// Looks up variables for substitution.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Processes one word: quotes removed, escapes applied, variables substituted.
pub fn expand(word: &str, vars: &dyn Vars, escape: char) -> std::result::Result<String, String> {
    let mut lexer = Lexer { chars: word.chars().collect(), pos: 0, escape, vars };
    let words = lexer.words(false)?;
    Ok(words.join(" "))
}

/// Splits into words at unquoted whitespace, each processed as [`expand`] does.
pub fn expand_words(text: &str, vars: &dyn Vars, escape: char) -> std::result::Result<Vec<String>, String> {
    let mut lexer = Lexer { chars: text.chars().collect(), pos: 0, escape, vars };
    lexer.words(true)
}

/// Splits `text` into words at unquoted whitespace without processing them (quotes and escapes
/// kept), for `KEY=VALUE` lists whose values are processed one by one.
pub fn split_raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (q, c) if c == escape && q != Some('\'') => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Words until the end; with `split`, unquoted whitespace separates words, else it is kept.
    fn words(&mut self, split: bool) -> std::result::Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut has_word = false;
        while let Some(c) = self.next() {
            if split && c.is_whitespace() {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
                continue;
            }
            has_word = true;
            match c {
                '\'' => loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => {
                            return Err(
                                "unexpected end of statement while looking for matching single-quote".into()
                            )
                        }
                    }
                },
                '"' => loop {
                    match self.next() {
                        Some('"') => break,
                        Some('$') => current.push_str(&self.variable()?),
                        Some(c) if c == self.escape => match self.next() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => current.push(n),
                            Some(n) => {
                                current.push(c);
                                current.push(n);
                            }
                            None => current.push(c),
                        },
                        Some(c) => current.push(c),
                        None => {
                            return Err(
                                "unexpected end of statement while looking for matching double-quote".into()
                            )
                        }
                    }
                },
                '$' => current.push_str(&self.variable()?),
                c if c == self.escape => match self.next() {
                    Some(n) => current.push(n),
                    None => current.push(c),
                },
                c => current.push(c),
            }
        }
        if has_word || (!split && words.is_empty()) {
            words.push(current);
        }
        Ok(words)
    }

    /// After a `$`: the substituted value of `$NAME`, `${NAME}` or `${NAME<op>word}`.
    fn variable(&mut self) -> std::result::Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: missing variable name".into());
                }
                let value = self.vars.get(&name);
                match self.next() {
                    Some('}') => Ok(value.unwrap_or_default()),
                    Some(':') => {
                        let op = self.next().ok_or("unexpected end of statement in variable substitution")?;
                        let word = self.until_brace()?;
                        let set = value.as_deref().is_some_and(|v| !v.is_empty());
                        apply_op(op, &name, value, set, word)
                    }
                    Some(op @ ('-' | '+' | '?')) => {
                        let word = self.until_brace()?;
                        let set = value.is_some();
                        apply_op(op, &name, value, set, word)
                    }
                    Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
                    None => Err("missing '}' in variable substitution".into()),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.vars.get(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// The word of `${NAME:-word}` up to the matching `}`, processed.
    fn until_brace(&mut self) -> std::result::Result<String, String> {
        let start = self.pos;
        let mut depth = 0;
        while let Some(c) = self.next() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    let inner: String = self.chars[start..self.pos - 1].iter().collect();
                    let mut lexer = Lexer {
                        chars: inner.chars().collect(),
                        pos: 0,
                        escape: self.escape,
                        vars: self.vars,
                    };
                    return Ok(lexer.words(false)?.join(" "));
                }
                '}' => depth -= 1,
                c if c == self.escape => self.pos += 1,
                _ => {}
            }
        }
        Err("missing '}' in variable substitution".into())
    }
}

fn apply_op(
    op: char,
    name: &str,
    value: Option<String>,
    set: bool,
    word: String,
) -> std::result::Result<String, String> {
    match op {
        '-' => Ok(if set { value.unwrap_or_default() } else { word }),
        '+' => Ok(if set { word } else { String::new() }),
        '?' if set => Ok(value.unwrap_or_default()),
        '?' => Err(if word.is_empty() {
            format!("{name}: is not allowed to be unset")
        } else {
            format!("{name}: {word}")
        }),
        c => Err(format!("unsupported modifier ({c}) in substitution")),
    }
}

/// Parses `KEY=VALUE ...` (or the legacy `KEY VALUE` form when `legacy` and the first word has
/// no `=`) with each value processed. Used by ENV, LABEL and ARG-like lists.
pub fn key_values(
    text: &str,
    vars: &dyn Vars,
    escape: char,
    instruction: &str,
) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_raw_words(text, escape);
    let Some(first) = words.first() else {
        return Err(format!("{instruction} requires at least one argument"));
    };
    if !first.contains('=') {
        // `ENV KEY value with spaces`: the rest of the line is the value.
        let trimmed = text.trim_start();
        let rest = trimmed[first.len()..].trim();
        if rest.is_empty() {
            return Err(format!("{instruction} must have two arguments"));
        }
        return Ok(vec![(expand(first, vars, escape)?, expand(rest, vars, escape)?)]);
    }
    let mut pairs = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value"));
        };
        let key = expand(key, vars, escape)?;
        if key.is_empty() {
            return Err(format!("{instruction} names can not be blank"));
        }
        pairs.push((key, expand(value, vars, escape)?));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitution_forms() {
        let e = |s: &str| expand(s, &vars, '\\').unwrap();
        assert_eq!(e("$A-${A}"), "a-a");
        assert_eq!(e("${B:-x y}"), "x y");
        assert_eq!(e("${EMPTY:-d}|${EMPTY-d}"), "d|");
        assert_eq!(e("${A:+set}|${B:+set}|${EMPTY+set}"), "set||set");
        assert_eq!(e("'$A' \"$A\" \\$A"), "$A a $A");
        assert!(expand("${B:?needed}", &vars, '\\').unwrap_err().contains("needed"));
        assert!(expand("${A", &vars, '\\').is_err());
    }

    #[test]
    fn env_forms() {
        let kv = key_values("X=1 Y=\"two words\" Z=${A}", &vars, '\\', "ENV").unwrap();
        assert_eq!(
            kv,
            vec![("X".into(), "1".into()), ("Y".into(), "two words".into()), ("Z".into(), "a".into())]
        );
        let legacy = key_values("KEY some value", &vars, '\\', "ENV").unwrap();
        assert_eq!(legacy, vec![("KEY".into(), "some value".into())]);
    }

    #[test]
    fn parses_stages_lines_and_continuations() {
        let text = "# syntax comment\nARG BASE=busybox\nFROM ${BASE} AS one\nRUN echo a \\\n  # inner comment\n  && echo b\nCOPY --chown=1:2 a b /dst/\nFROM one\nCMD [\"sh\"]\n";
        let d = parse("Dockerfile", text).unwrap();
        assert_eq!(d.meta_args.len(), 1);
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].name.as_deref(), Some("one"));
        let run = &d.stages[0].steps[0];
        assert_eq!(run.line, 4);
        match &run.inst {
            Inst::Run(Cmd::Shell(s)) => assert_eq!(s, "echo a   && echo b"),
            other => panic!("{other:?}"),
        }
        match &d.stages[0].steps[1].inst {
            Inst::Copy(c) => {
                assert_eq!(c.chown.as_deref(), Some("1:2"));
                assert_eq!(c.sources, vec!["a", "b"]);
                assert_eq!(c.dest, "/dst/");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.stages[1].steps[0].line, 9);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("Dockerfile", "FROM busybox\n\nFOO bar\n").unwrap_err().to_string();
        assert!(e.starts_with("Dockerfile:3: "), "{e}");
        assert!(e.contains("FOO"), "{e}");
        let e = parse("x/Dockerfile", "RUN true\n").unwrap_err().to_string();
        assert!(e.starts_with("x/Dockerfile"), "{e}");
        let e = parse("Dockerfile", "FROM a\nCOPY --bogus=1 a b\n").unwrap_err().to_string();
        assert_eq!(e, "Dockerfile:2: unknown flag: --bogus");
    }

    #[test]
    fn escape_directive() {
        let d = parse("Dockerfile", "# escape=`\nFROM a\nRUN echo a `\n  b\n").unwrap();
        assert_eq!(d.escape, '`');
        // With ` as the escape character, a backslash is an ordinary character.
        assert_eq!(expand("C:\\app\\bin", &vars, '`').unwrap(), "C:\\app\\bin");
        assert_eq!(expand("`\"q`\"", &vars, '`').unwrap(), "\"q\"");
        match &d.stages[0].steps[0].inst {
            Inst::Run(Cmd::Shell(s)) => assert_eq!(s, "echo a   b"),
            other => panic!("{other:?}"),
        }
    }
}
