//! Wildcard patterns (`*` any run of characters, `?` one character) with
//! policy variables expanded into literal text.

use super::Context;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    Star,
    Question,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// `*` and `?` are wildcards; nothing else is special.
    pub fn literal_with_wildcards(text: &str) -> Self {
        Self {
            tokens: text.chars().map(wildcard_or_literal).collect(),
        }
    }

    /// Only the characters themselves: for the `…Equals` operators.
    pub fn exact(text: &str) -> Self {
        Self {
            tokens: text.chars().map(Token::Literal).collect(),
        }
    }

    /// Expands policy variables when `variables` is given (a 2012-10-17
    /// document); None when a variable has no value and no default, which
    /// makes the element match nothing.
    pub fn compile(text: &str, variables: Option<&Context>) -> Option<Self> {
        Self::build(text, variables, true)
    }

    /// Like [`Pattern::compile`], with `*` and `?` taken literally.
    pub fn compile_exact(text: &str, variables: Option<&Context>) -> Option<Self> {
        Self::build(text, variables, false)
    }

    fn build(text: &str, variables: Option<&Context>, wildcards: bool) -> Option<Self> {
        let plain = |c| {
            if wildcards {
                wildcard_or_literal(c)
            } else {
                Token::Literal(c)
            }
        };
        let Some(context) = variables else {
            return Some(Self {
                tokens: text.chars().map(plain).collect(),
            });
        };
        let mut tokens = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            tokens.extend(rest[..start].chars().map(plain));
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                // No closing brace: the text is literal.
                tokens.extend(rest[start..].chars().map(plain));
                rest = "";
                break;
            };
            let inner = &after[..end];
            match inner {
                "*" | "?" | "$" => tokens.extend(inner.chars().map(Token::Literal)),
                _ => {
                    let (key, default) = match inner.split_once(',') {
                        Some((key, default)) => {
                            let default = default.trim();
                            let default = default
                                .strip_prefix('\'')
                                .and_then(|d| d.strip_suffix('\''))?;
                            (key.trim(), Some(default))
                        }
                        None => (inner.trim(), None),
                    };
                    let value = match context.get(key) {
                        Some([one]) => one.as_str(),
                        _ => default?,
                    };
                    tokens.extend(value.chars().map(Token::Literal));
                }
            }
            rest = &after[end + 1..];
        }
        tokens.extend(rest.chars().map(plain));
        Some(Self { tokens })
    }

    /// The pattern written back as text (wildcards as `*` and `?`).
    pub fn text(&self) -> String {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Literal(c) => *c,
                Token::Star => '*',
                Token::Question => '?',
            })
            .collect()
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        // Positions are byte offsets into `text`, always on a character
        // boundary: no copy of the text per call (this runs for every
        // statement of every call).
        let next = |t: usize| text[t..].chars().next().map(|c| (c, t + c.len_utf8()));
        let (mut t, mut p) = (0usize, 0usize);
        // The last `*` seen and the text position it was tried at: the
        // classic backtracking wildcard match, linear in practice.
        let mut star: Option<(usize, usize)> = None;
        while let Some((c, after)) = next(t) {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Token::Question) => {
                    p += 1;
                    t = after;
                }
                Some(Token::Literal(l)) if *l == c => {
                    p += 1;
                    t = after;
                }
                _ => match star {
                    Some((sp, st)) => {
                        // Let the `*` take one more character.
                        let (_, st_after) = next(st).expect("st is before t");
                        p = sp + 1;
                        t = st_after;
                        star = Some((sp, st_after));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

fn wildcard_or_literal(c: char) -> Token {
    match c {
        '*' => Token::Star,
        '?' => Token::Question,
        c => Token::Literal(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let p = Pattern::literal_with_wildcards;
        assert!(p("*").matches(""));
        assert!(p("*").matches("arn:aws:x:/a/b"));
        assert!(p("emr-containers:Describe*").matches("emr-containers:DescribeJobRun"));
        assert!(!p("emr-containers:Describe*").matches("emr-containers:ListJobRuns"));
        assert!(p("a?c").matches("abc"));
        assert!(!p("a?c").matches("ac"));
        assert!(p("*/jobruns/*").matches("arn:x:/virtualclusters/v/jobruns/r"));
        assert!(p("a*b*c").matches("aXbYbZc"));
        assert!(!p("a*b*c").matches("aXbYbZ"));
        // Characters, not bytes: `?` is one character of any width.
        assert!(p("t?m").matches("tém"));
        assert!(p("*é*").matches("café au lait"));
        assert!(!p("caf?").matches("café!"));
    }

    #[test]
    fn variables_expand_literally_and_escapes_work() {
        let mut ctx = Context::default();
        ctx.set("aws:PrincipalTag/team", "a*");
        let p = Pattern::compile("arn:x:/teams/${aws:PrincipalTag/team}/*", Some(&ctx)).unwrap();
        assert!(p.matches("arn:x:/teams/a*/r"));
        assert!(!p.matches("arn:x:/teams/ab/r"), "the value's * is literal");
        assert_eq!(Pattern::compile("${aws:username}", Some(&ctx)), None);
        let d = Pattern::compile("${aws:username, 'nobody'}", Some(&ctx)).unwrap();
        assert!(d.matches("nobody"));
        let e = Pattern::compile("${*}${?}${$}", Some(&ctx)).unwrap();
        assert!(e.matches("*?$"));
        assert!(!e.matches("x?$"));
        // 2008-10-17: no variables.
        assert!(Pattern::compile("${x}", None).unwrap().matches("${x}"));
    }
}
