//! Per-path rules from the capsule file (`[[host.rule]]`): for request
//! paths matching a pattern, a redirect (30/31, with the pattern's `*`
//! parts substituted), another status (`52 Gone`, `51`, …), or a MIME type
//! and language for the file served. The first matching rule wins. A
//! redirect or status applies whether or not the file exists (old URLs keep
//! working); a MIME rule only changes how an existing file is served.
//!
//! ```toml
//! [[host.rule]]
//! path = "/old/*"
//! redirect = "/new/$1"        # 31; `status = 30` for a temporary one
//!
//! [[host.rule]]
//! path = "/retired.gmi"
//! status = 52
//! meta = "This page is gone"
//!
//! [[host.rule]]
//! path = "/fr/*"
//! lang = "fr"                 # or mime = "text/plain; charset=latin1"
//! ```

use serde::Deserialize;
use tessera_guard::CanonicalPath;

use crate::{Error, Header};

/// Most rules per host, and most `*` in a pattern.
const MAX_RULES: usize = 1024;
const MAX_STARS: usize = 9;

/// One `[[host.rule]]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The request path pattern: canonical, from `/`; `*` matches any run of
    /// characters (`/` included), the rest literally.
    pub path: String,
    /// Redirect target; `$1`…`$9` are what the `*`s matched.
    pub redirect: Option<String>,
    /// The status: 30 or 31 with `redirect` (default 31); otherwise any
    /// status but 2x, sent with `meta`.
    pub status: Option<u8>,
    /// The META of `status`.
    pub meta: Option<String>,
    /// The MIME type files under the pattern are served as.
    pub mime: Option<String>,
    /// A `lang` parameter added to their MIME type.
    pub lang: Option<String>,
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Redirect {
        status: u8,
        target: String,
    },
    Answer(Header),
    Mime {
        mime: Option<String>,
        lang: Option<String>,
    },
}

#[derive(Clone, Debug)]
struct Rule {
    pattern: String,
    action: Action,
}

/// A host's rules, checked.
#[derive(Clone, Debug, Default)]
pub struct PathRules(Vec<Rule>);

impl PathRules {
    /// Checks `configs`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the rule: a pattern that is not a canonical
    /// path, a rule with no action or two, a bad status, META or MIME type.
    pub fn new(configs: &[RuleConfig]) -> Result<Self, Error> {
        if configs.len() > MAX_RULES {
            return Err(Error::Config(format!("more than {MAX_RULES} rules")));
        }
        configs
            .iter()
            .map(Rule::new)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The answer a rule gives `path` instead of any file: a redirect or a status.
    pub(crate) fn answer(&self, path: &CanonicalPath) -> Option<Header> {
        let (rule, captures) = self.first(path)?;
        match &rule.action {
            Action::Redirect { status, target } => {
                Some(Header::new(*status, substitute(target, &captures)))
            }
            Action::Answer(header) => Some(header.clone()),
            Action::Mime { .. } => None,
        }
    }

    /// The MIME type a file at `path` is served as, `mime` unless a rule says.
    pub(crate) fn mime(&self, path: &CanonicalPath, mime: String) -> String {
        match self.first(path) {
            Some((
                Rule {
                    action:
                        Action::Mime {
                            mime: replaced,
                            lang,
                        },
                    ..
                },
                _,
            )) => {
                let mut mime = replaced.clone().unwrap_or(mime);
                if let Some(lang) = lang {
                    mime.push_str("; lang=");
                    mime.push_str(lang);
                }
                mime
            }
            _ => mime,
        }
    }

    fn first<'a>(&self, path: &'a CanonicalPath) -> Option<(&Rule, Vec<&'a str>)> {
        self.0.iter().find_map(|rule| {
            let mut captures = Vec::new();
            matches(&rule.pattern, path.as_str(), &mut captures).then_some((rule, captures))
        })
    }
}

impl Rule {
    fn new(config: &RuleConfig) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Config(format!("rule for {:?}: {reason}", config.path));
        if !config.path.starts_with('/') || config.path.matches('*').count() > MAX_STARS {
            return Err(bad("path must start with / and have at most 9 `*`"));
        }
        // The literal parts must be canonical, so they can match a request path.
        let literal = config.path.replace('*', "x");
        if CanonicalPath::parse(&literal).map(|p| p.as_str().to_owned()) != Ok(literal.clone()) {
            return Err(bad(
                "path must be canonical (no dot or empty segments, no escapes)",
            ));
        }
        let mime = config.mime.is_some() || config.lang.is_some();
        let action = match (&config.redirect, config.status, &config.meta, mime) {
            (Some(target), status, None, false) => {
                let status = status.unwrap_or(31);
                if !matches!(status, 30 | 31) {
                    return Err(bad("a redirect's status is 30 or 31"));
                }
                check_meta(target).map_err(&bad)?;
                Action::Redirect {
                    status,
                    target: target.clone(),
                }
            }
            (None, Some(status), meta, false) => {
                if !(10..=69).contains(&status) || status / 10 == 2 {
                    return Err(bad("status must be 10–69 and not 2x (use mime for those)"));
                }
                let meta = meta.clone().unwrap_or_default();
                check_meta(&meta).map_err(&bad)?;
                Action::Answer(Header::new(status, meta))
            }
            (None, None, None, true) => {
                for value in config.mime.iter().chain(&config.lang) {
                    check_meta(value).map_err(&bad)?;
                }
                if config.mime.as_ref().is_some_and(|m| !m.contains('/')) {
                    return Err(bad("mime must be a type/subtype"));
                }
                Action::Mime {
                    mime: config.mime.clone(),
                    lang: config.lang.clone(),
                }
            }
            _ => return Err(bad(
                "give one of: redirect (with status 30/31), status (with meta), mime and/or lang",
            )),
        };
        Ok(Self {
            pattern: config.path.clone(),
            action,
        })
    }
}

/// A META value must fit a header line: no control characters, at most 1024 bytes.
fn check_meta(value: &str) -> Result<(), &'static str> {
    if value.len() > crate::status::MAX_META {
        return Err("longer than 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return Err("control characters");
    }
    Ok(())
}

/// Whether `path` matches `pattern`, with what each `*` matched. The
/// literal parts between stars are found left to right, each at its first
/// place (for `*`-only patterns that finds a match whenever there is one),
/// between the first part as a prefix and the last as a suffix: linear in
/// the path per part, never backtracking.
fn matches<'a>(pattern: &str, path: &'a str, captures: &mut Vec<&'a str>) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == path;
    }
    if path.len() < first.len() + last.len() || !path.starts_with(first) || !path.ends_with(last) {
        return false;
    }
    let middle = &path[first.len()..path.len() - last.len()];
    let mut at = 0;
    for part in &parts[1..parts.len() - 1] {
        let Some(found) = middle[at..].find(part) else {
            return false;
        };
        captures.push(&middle[at..at + found]);
        at += found + part.len();
    }
    captures.push(&middle[at..]);
    true
}

/// `target` with `$1`…`$9` replaced by the captures (an absent one is empty).
fn substitute(target: &str, captures: &[&str]) -> String {
    let mut out = String::with_capacity(target.len());
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('$', Some(n)) if n >= 1 => {
                chars.next();
                out.push_str(captures.get(n as usize - 1).copied().unwrap_or(""));
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str) -> RuleConfig {
        RuleConfig {
            path: path.into(),
            redirect: None,
            status: None,
            meta: None,
            mime: None,
            lang: None,
        }
    }

    fn path(text: &str) -> CanonicalPath {
        CanonicalPath::parse(text).unwrap()
    }

    #[test]
    fn redirects_substitute_what_the_stars_matched() {
        let rules = PathRules::new(&[RuleConfig {
            redirect: Some("gemini://new.example/$2/$1".into()),
            ..rule("/old/*/*.gmi")
        }])
        .unwrap();
        assert_eq!(
            rules
                .answer(&path("/old/2024/notes.gmi"))
                .unwrap()
                .to_string(),
            "31 gemini://new.example/notes/2024"
        );
        assert_eq!(rules.answer(&path("/old/notes.txt")), None);
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = PathRules::new(&[
            RuleConfig {
                status: Some(52),
                meta: Some("Gone".into()),
                ..rule("/blog/2019/*")
            },
            RuleConfig {
                lang: Some("fr".into()),
                ..rule("/blog/*")
            },
        ])
        .unwrap();
        assert_eq!(
            rules.answer(&path("/blog/2019/a.gmi")).unwrap().to_string(),
            "52 Gone"
        );
        assert_eq!(rules.answer(&path("/blog/2020/a.gmi")), None);
        assert_eq!(
            rules.mime(&path("/blog/2020/a.gmi"), "text/gemini".into()),
            "text/gemini; lang=fr"
        );
        assert_eq!(
            rules.mime(&path("/other.gmi"), "text/gemini".into()),
            "text/gemini"
        );
    }

    #[test]
    fn bad_rules_are_refused_with_their_path() {
        for bad in [
            rule("/nothing/to/do"),
            RuleConfig {
                status: Some(20),
                ..rule("/x")
            },
            RuleConfig {
                redirect: Some("/y".into()),
                status: Some(52),
                ..rule("/x")
            },
            RuleConfig {
                status: Some(52),
                meta: Some("line\r\nbreak".into()),
                ..rule("/x")
            },
            RuleConfig {
                mime: Some("plain".into()),
                ..rule("/x")
            },
            RuleConfig {
                status: Some(51),
                ..rule("/../etc/*")
            },
            RuleConfig {
                status: Some(51),
                ..rule("relative/*")
            },
        ] {
            let error = PathRules::new(std::slice::from_ref(&bad))
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("{:?}", bad.path)), "{error}");
        }
    }

    #[test]
    fn matching_is_bounded_for_hostile_paths() {
        let rules = PathRules::new(&[RuleConfig {
            status: Some(51),
            ..rule("/*a*a*a*a*a*a*a*a*b")
        }])
        .unwrap();
        let long = format!("/{}", "a".repeat(100_000));
        assert_eq!(rules.answer(&path(&long)), None);
        assert!(rules.answer(&path(&format!("{long}b"))).is_some());
    }
}
