//! `sparkSubmitParameters` / `sparkSqlParameters` → argv, safely.
//!
//! [`split_words`] splits like a POSIX shell's word splitting with quotes but
//! performs **no expansion of any kind**: single quotes are literal, double
//! quotes honour backslash before `"`, `\`, `$`, `` ` `` and newline, a
//! backslash outside quotes escapes the next character, and unquoted
//! whitespace separates words. `$(...)`, backticks, `;`, `|`, `&&`, `>` and
//! globs are ordinary characters: no shell ever runs them, because the
//! job-runner's container command is an exec array.
//!
//! [`parse_submit_args`] then reads the words as spark-submit options: it
//! takes every `--conf k=v` out (they go into `spark-defaults.conf`, where
//! sparkvc can see them and check them against what it must control), keeps
//! the other options in order, and refuses options that would take control of
//! the submission away from sparkvc (`--master`, `--deploy-mode`,
//! `--properties-file`, …), options it does not know, and stray positional
//! words (spark-submit would take the first one as the application and turn
//! the real entry point into an argument).

use super::RenderError;

/// Splits `text` (the value of the member `field`) into words. See the module
/// documentation for the rules.
pub fn split_words(field: &str, text: &str) -> Result<Vec<String>, RenderError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                } else {
                    word.push(c);
                }
            }
            Quote::Double => match c {
                '"' => quote = Quote::None,
                '\\' => match chars.peek().copied() {
                    Some('"' | '\\' | '$' | '`') => word.push(chars.next().unwrap_or('\\')),
                    Some('\n') => {
                        chars.next();
                    }
                    _ => word.push('\\'),
                },
                _ => word.push(c),
            },
            Quote::None => match c {
                ' ' | '\t' | '\n' | '\r' => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                '\'' => {
                    quote = Quote::Single;
                    in_word = true;
                }
                '"' => {
                    quote = Quote::Double;
                    in_word = true;
                }
                '\\' => match chars.next() {
                    // A backslash-newline is a line continuation.
                    Some('\n') => {}
                    Some(next) => {
                        word.push(next);
                        in_word = true;
                    }
                    None => {
                        return Err(RenderError::user(
                            field,
                            format!("{field} ends with a backslash that escapes nothing"),
                        ));
                    }
                },
                _ => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    let open = match quote {
        Quote::None => None,
        Quote::Single => Some('\''),
        Quote::Double => Some('"'),
    };
    if let Some(q) = open {
        return Err(RenderError::user(
            field,
            format!("{field} has an unterminated {q} quote"),
        ));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Which member the words came from: the SQL driver accepts fewer options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsKind {
    SparkSubmit,
    SparkSql,
}

/// spark-submit options after [`parse_submit_args`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitArgs {
    /// The options to pass to spark-submit, in the user's order, without any
    /// `--conf`.
    pub options: Vec<String>,
    /// The `--conf key=value` pairs, in the user's order (a later one wins).
    pub conf: Vec<(String, String)>,
}

/// spark-submit options that take a value (besides `--conf`/`-c`).
const VALUE_OPTIONS: &[&str] = &[
    "--class",
    "--name",
    "--jars",
    "--packages",
    "--exclude-packages",
    "--repositories",
    "--py-files",
    "--files",
    "--archives",
    "--driver-memory",
    "--driver-java-options",
    "--driver-library-path",
    "--driver-class-path",
    "--driver-cores",
    "--executor-memory",
    "--executor-cores",
    "--total-executor-cores",
    "--num-executors",
    "--queue",
    "--principal",
    "--keytab",
    "--proxy-user",
];

/// spark-submit options without a value that are harmless.
const SWITCHES: &[&str] = &["--verbose", "-v", "--supervise"];

/// Options sparkvc sets itself, or that turn spark-submit into something other
/// than a cluster-mode submission.
const CONTROLLED_OPTIONS: &[&str] = &[
    "--master",
    "--deploy-mode",
    "--properties-file",
    "--kill",
    "--status",
    "--help",
    "-h",
    "--version",
    "--usage-error",
    "--remote",
];

/// spark-sql command-line options, which the SQL driver does not accept.
const SQL_CLI_OPTIONS: &[&str] = &[
    "-d",
    "--define",
    "--hivevar",
    "--hiveconf",
    "--database",
    "-e",
    "-f",
    "-i",
    "-S",
    "--silent",
];

/// Reads `words` (from the member `field`) as spark-submit options.
pub fn parse_submit_args(
    field: &str,
    kind: ArgsKind,
    words: Vec<String>,
) -> Result<SubmitArgs, RenderError> {
    let mut out = SubmitArgs::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if !word.starts_with('-') || word == "-" {
            return Err(RenderError::user(
                field,
                format!(
                    "{field} may hold only spark-submit options, but {word:?} is not one \
                     (the entry point and its arguments have their own members)"
                ),
            ));
        }
        // spark-submit accepts `--option=value` as well as `--option value`.
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if word.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (word.clone(), None),
        };
        let mut value = |name: &str| match inline.clone().or_else(|| words.next()) {
            Some(v) => Ok(v),
            None => Err(RenderError::user(
                field,
                format!("{field}: option {name} needs a value"),
            )),
        };
        if name == "--conf" || name == "-c" {
            let pair = value(&name)?;
            let Some((key, val)) = pair.split_once('=') else {
                return Err(RenderError::user(
                    field,
                    format!("{field}: --conf {pair:?} is not of the form key=value"),
                ));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(RenderError::user(
                    field,
                    format!("{field}: --conf {pair:?} has an empty key"),
                ));
            }
            out.conf.push((key.to_string(), val.to_string()));
        } else if CONTROLLED_OPTIONS.contains(&name.as_str()) {
            return Err(RenderError::user(
                field,
                format!("{field}: {name} is set by sparkvc and cannot be given"),
            ));
        } else if kind == ArgsKind::SparkSql && SQL_CLI_OPTIONS.contains(&name.as_str()) {
            return Err(RenderError::user(
                field,
                format!("{field}: the spark-sql option {name} is not supported"),
            ));
        } else if kind == ArgsKind::SparkSql && name == "--class" {
            return Err(RenderError::user(
                field,
                format!("{field}: --class cannot be given to a Spark SQL job"),
            ));
        } else if VALUE_OPTIONS.contains(&name.as_str()) {
            let v = value(&name)?;
            out.options.push(name);
            out.options.push(v);
        } else if SWITCHES.contains(&name.as_str()) && inline.is_none() {
            out.options.push(name);
        } else {
            return Err(RenderError::user(
                field,
                format!("{field}: unknown spark-submit option {name}"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "sparkSubmitParameters";

    fn split(text: &str) -> Vec<String> {
        split_words(F, text).unwrap()
    }

    fn split_err(text: &str) -> String {
        split_words(F, text).unwrap_err().to_string()
    }

    #[test]
    fn whitespace_separates_words() {
        assert_eq!(
            split("  --class  Foo\t--jars\na.jar\r\n"),
            ["--class", "Foo", "--jars", "a.jar"]
        );
        assert!(split("").is_empty());
        assert!(split(" \t\n ").is_empty());
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(split("--conf 'a=b c'"), ["--conf", "a=b c"]);
        assert_eq!(split("--conf \"a=b c\""), ["--conf", "a=b c"]);
        assert_eq!(split("a'b c'd\"e f\"g"), ["ab cde fg"]);
        assert_eq!(split("'' \"\""), ["", ""]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(split(r#"'a\b "c" $X `d`'"#), [r#"a\b "c" $X `d`"#]);
    }

    #[test]
    fn double_quotes_honour_four_escapes_only() {
        assert_eq!(split(r#""\" \\ \$ \` \n \a""#), [r#"" \ $ ` \n \a"#]);
        assert_eq!(split("\"a\\\nb\""), ["ab"]);
    }

    #[test]
    fn backslash_outside_quotes_escapes_next_char() {
        assert_eq!(split(r"a\ b \'c \\"), ["a b", "'c", "\\"]);
        assert_eq!(split("a\\\nb"), ["ab"]);
        assert_eq!(
            split_err(r"a\"),
            "sparkSubmitParameters ends with a backslash that escapes nothing"
        );
    }

    #[test]
    fn unterminated_quotes_name_the_member() {
        assert_eq!(
            split_err("--conf \"a=b"),
            "sparkSubmitParameters has an unterminated \" quote"
        );
        assert_eq!(
            split_err("--conf 'a=b"),
            "sparkSubmitParameters has an unterminated ' quote"
        );
        let err = split_words("sparkSqlParameters", "'").unwrap_err();
        assert_eq!(
            err,
            RenderError::User {
                field: "sparkSqlParameters".into(),
                message: "sparkSqlParameters has an unterminated ' quote".into()
            }
        );
    }

    #[test]
    fn shell_metacharacters_are_plain_text() {
        let attempts = [
            ("$(touch /tmp/pwned)", vec!["$(touch", "/tmp/pwned)"]),
            ("`id`", vec!["`id`"]),
            ("a;rm -rf /", vec!["a;rm", "-rf", "/"]),
            ("a|nc x 1", vec!["a|nc", "x", "1"]),
            ("a&&b", vec!["a&&b"]),
            ("a > /etc/passwd", vec!["a", ">", "/etc/passwd"]),
            ("${HOME} $HOME *", vec!["${HOME}", "$HOME", "*"]),
            ("\"$(id)\"", vec!["$(id)"]),
            ("'; echo pwned; '", vec!["; echo pwned; "]),
        ];
        for (text, want) in attempts {
            assert_eq!(split(text), want, "{text}");
        }
    }

    fn parse(text: &str) -> Result<SubmitArgs, RenderError> {
        parse_submit_args(F, ArgsKind::SparkSubmit, split(text))
    }

    #[test]
    fn conf_pairs_are_taken_out_in_order() {
        let args = parse(
            "--class org.example.Main --conf spark.a=1 -c spark.b=x=y --conf=spark.a=2 \
             --conf 'spark.driver.extraJavaOptions=-Dx=1 -Dy=2' --verbose --jars=a.jar,b.jar",
        )
        .unwrap();
        assert_eq!(
            args.options,
            [
                "--class",
                "org.example.Main",
                "--verbose",
                "--jars",
                "a.jar,b.jar"
            ]
        );
        assert_eq!(
            args.conf,
            [
                ("spark.a".to_string(), "1".to_string()),
                ("spark.b".into(), "x=y".into()),
                ("spark.a".into(), "2".into()),
                ("spark.driver.extraJavaOptions".into(), "-Dx=1 -Dy=2".into()),
            ]
        );
    }

    #[test]
    fn values_may_start_with_a_dash() {
        let args = parse("--driver-java-options -Dfoo=bar").unwrap();
        assert_eq!(args.options, ["--driver-java-options", "-Dfoo=bar"]);
    }

    #[test]
    fn controlled_options_are_refused_by_name() {
        for (text, name) in [
            ("--master local[*]", "--master"),
            ("--master=local", "--master"),
            ("--deploy-mode client", "--deploy-mode"),
            ("--properties-file /tmp/x", "--properties-file"),
            ("--kill spark-x", "--kill"),
            ("--status x", "--status"),
            ("--help", "--help"),
            ("--version", "--version"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err.failure_reason(),
                sparkvc_proto::FailureReason::UserError
            );
            assert_eq!(
                err.to_string(),
                format!("sparkSubmitParameters: {name} is set by sparkvc and cannot be given"),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_options_are_refused() {
        let msg = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(
            msg("--conf"),
            "sparkSubmitParameters: option --conf needs a value"
        );
        assert_eq!(
            msg("--class"),
            "sparkSubmitParameters: option --class needs a value"
        );
        assert!(msg("--conf novalue").contains("is not of the form key=value"));
        assert!(msg("--conf =x").contains("has an empty key"));
        assert_eq!(
            msg("--frobnicate"),
            "sparkSubmitParameters: unknown spark-submit option --frobnicate"
        );
        assert!(msg("local:///app.jar").contains("\"local:///app.jar\" is not one"));
        assert!(msg("--class A extra").contains("\"extra\" is not one"));
    }

    #[test]
    fn injection_attempts_stay_inside_one_argument() {
        // Whatever the text, a value is one argv element and nothing runs it.
        let args = parse("--name \"x; --master local\" --conf 'spark.a=$(curl evil)'").unwrap();
        assert_eq!(args.options, ["--name", "x; --master local"]);
        assert_eq!(
            args.conf,
            [("spark.a".to_string(), "$(curl evil)".to_string())]
        );
        // A smuggled option is still seen as one.
        assert!(parse("--name x --master=k8s://evil").is_err());
    }

    #[test]
    fn sql_driver_refuses_cli_options_and_class() {
        let parse_sql =
            |t: &str| parse_submit_args("sparkSqlParameters", ArgsKind::SparkSql, split(t));
        assert!(parse_sql("--conf spark.a=1 --driver-memory 2g").is_ok());
        assert_eq!(
            parse_sql("--hivevar x=1").unwrap_err().to_string(),
            "sparkSqlParameters: the spark-sql option --hivevar is not supported"
        );
        assert!(parse_sql("-f x.sql").is_err());
        assert!(parse_sql("--class X").is_err());
    }
}
