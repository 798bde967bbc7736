//! Per-request routing of an HTTP service with L7 rules: which WAN class carries a request, or
//! whether it is denied. Rules are tried in order and the first whose match fits decides; a
//! request no rule matches takes the default action.
//!
//! A match fits when every condition it states holds: the method, the path (Gateway API's
//! Exact, PathPrefix and RegularExpression), and each header. PathPrefix matches whole path
//! elements (`/payment` matches `/payment` and `/payment/1`, not `/payments`); a regular
//! expression must match the whole path. The path is the request target without its query.

use hyper::header::HeaderName;
use hyper::{HeaderMap, Method};
use regex::Regex;

use crate::model::{self, HttpRule, RouteAction};

/// How a path is matched.
#[derive(Clone, Debug)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl PathMatch {
    /// A regular-expression path match, anchored at both ends.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$")).map(Self::Regex)
    }

    fn fits(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(p) => {
                let p = p.trim_end_matches('/');
                p.is_empty()
                    || path == p
                    || path
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            Self::Regex(r) => r.is_match(path),
        }
    }
}

/// How a header's value is matched.
#[derive(Clone, Debug)]
pub enum ValueMatch {
    Exact(String),
    Regex(Regex),
}

impl ValueMatch {
    /// A regular-expression value match, anchored at both ends.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$")).map(Self::Regex)
    }
}

/// A header condition: the header is present with a fitting value.
#[derive(Clone, Debug)]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub value: ValueMatch,
}

/// One set of conditions; a condition left out always holds.
#[derive(Clone, Debug, Default)]
pub struct Match {
    pub method: Option<Method>,
    pub path: Option<PathMatch>,
    pub headers: Vec<HeaderMatch>,
}

impl Match {
    fn fits(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_ref().is_none_or(|p| p.fits(path))
            && self.headers.iter().all(|h| {
                headers.get_all(&h.name).iter().any(|v| {
                    v.to_str().is_ok_and(|v| match &h.value {
                        ValueMatch::Exact(e) => v == e,
                        ValueMatch::Regex(r) => r.is_match(v),
                    })
                })
            })
    }
}

/// What happens to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Carried over this WAN class (tunnel class) to the exporting gateways.
    Class(String),
    /// Answered 403 by the importing gateway; nothing crosses the WAN.
    Deny,
}

/// A rule: any of its matches fits (no match at all fits every request).
#[derive(Clone, Debug)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub action: Action,
}

/// A service's rules and its default action.
#[derive(Clone, Debug)]
pub struct Routes {
    pub rules: Vec<Rule>,
    pub default: Action,
}

/// Which rule decided (None: the default) and what it decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    pub rule: Option<usize>,
    pub action: &'a Action,
}

impl Routes {
    /// Decides a request by its method, path (without the query) and headers.
    pub fn decide(&self, method: &Method, path: &str, headers: &HeaderMap) -> Decision<'_> {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches.is_empty() || rule.matches.iter().any(|m| m.fits(method, path, headers))
            {
                return Decision {
                    rule: Some(i),
                    action: &rule.action,
                };
            }
        }
        Decision {
            rule: None,
            action: &self.default,
        }
    }

    /// The WAN classes the rules and the default can choose.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|r| &r.action)
            .chain(std::iter::once(&self.default))
            .filter_map(|a| match a {
                Action::Class(c) => Some(c.as_str()),
                Action::Deny => None,
            })
    }
}

impl Routes {
    /// The routes of a WANRoute's rules and default, each WAN policy a class of its own name.
    /// Fails, naming the rule and the value, on a regular expression that does not compile or a
    /// method or header name HTTP cannot carry (the API server and mcwan's own checks refuse
    /// both before they get here).
    pub fn from_model(rules: &[HttpRule], default: &RouteAction) -> Result<Self, String> {
        let action = |a: &RouteAction| match a {
            RouteAction::WanPolicy(p) => Action::Class(p.clone()),
            RouteAction::Deny => Action::Deny,
        };
        let mut out = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let mut matches = Vec::with_capacity(rule.matches.len());
            for (j, m) in rule.matches.iter().enumerate() {
                let at = format!("spec.http.rules[{i}].matches[{j}]");
                let method = match &m.method {
                    Some(name) => Some(
                        Method::from_bytes(name.as_bytes())
                            .map_err(|e| format!("{at}.method {name:?}: {e}"))?,
                    ),
                    None => None,
                };
                let path = match &m.path {
                    None => None,
                    Some(model::PathMatch::Exact(p)) => Some(PathMatch::Exact(p.clone())),
                    Some(model::PathMatch::PathPrefix(p)) => Some(PathMatch::Prefix(p.clone())),
                    Some(model::PathMatch::RegularExpression(p)) => Some(
                        PathMatch::regex(p).map_err(|e| format!("{at}.path.value {p:?}: {e}"))?,
                    ),
                };
                let mut headers = Vec::with_capacity(m.headers.len());
                for (k, h) in m.headers.iter().enumerate() {
                    let name = HeaderName::from_bytes(h.name.as_bytes())
                        .map_err(|e| format!("{at}.headers[{k}].name {:?}: {e}", h.name))?;
                    let value = match &h.value {
                        model::ValueMatch::Exact(v) => ValueMatch::Exact(v.clone()),
                        model::ValueMatch::RegularExpression(v) => ValueMatch::regex(v)
                            .map_err(|e| format!("{at}.headers[{k}].value {v:?}: {e}"))?,
                    };
                    headers.push(HeaderMatch { name, value });
                }
                matches.push(Match {
                    method,
                    path,
                    headers,
                });
            }
            out.push(Rule {
                matches,
                action: action(&rule.action),
            });
        }
        Ok(Self {
            rules: out,
            default: action(default),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's story as deploy/examples/wanroute-payment.yaml writes it: GET /payment is
    /// sensitive (the high-priority class), /stats goes over the low-priority one (the
    /// Internet), anything else is denied.
    pub(crate) fn seed() -> Routes {
        crate::l7::seed_routes().unwrap()
    }

    fn decide<'a>(r: &'a Routes, m: Method, path: &str) -> (Option<usize>, &'a Action) {
        let d = r.decide(&m, path, &HeaderMap::new());
        (d.rule, d.action)
    }

    #[test]
    fn the_seed_story_decides_as_written() {
        let r = seed();
        let high = Action::Class("sd-wan-priority-high".into());
        let internet = Action::Class("sd-wan-priority-low".into());
        assert_eq!(decide(&r, Method::GET, "/payment"), (Some(0), &high));
        assert_eq!(decide(&r, Method::GET, "/payment/42"), (Some(0), &high));
        assert_eq!(decide(&r, Method::POST, "/payment"), (None, &Action::Deny));
        assert_eq!(decide(&r, Method::GET, "/payments"), (None, &Action::Deny));
        assert_eq!(decide(&r, Method::POST, "/stats"), (Some(1), &internet));
        assert_eq!(decide(&r, Method::GET, "/"), (None, &Action::Deny));
        assert_eq!(
            r.classes().collect::<Vec<_>>(),
            ["sd-wan-priority-high", "sd-wan-priority-low"]
        );
    }

    #[test]
    fn exact_regex_and_header_matches() {
        let r = Routes {
            rules: vec![Rule {
                matches: vec![
                    Match {
                        path: Some(PathMatch::Exact("/a".into())),
                        ..Match::default()
                    },
                    Match {
                        path: Some(PathMatch::regex("/v[0-9]+/items").unwrap()),
                        headers: vec![HeaderMatch {
                            name: HeaderName::from_static("x-tier"),
                            value: ValueMatch::regex("gold|silver").unwrap(),
                        }],
                        ..Match::default()
                    },
                ],
                action: Action::Class("gold".into()),
            }],
            default: Action::Class("best-effort".into()),
        };
        let mut gold = HeaderMap::new();
        gold.insert("x-tier", "silver".parse().unwrap());
        let d = |path: &str, h: &HeaderMap| r.decide(&Method::GET, path, h).rule;
        assert_eq!(d("/a", &HeaderMap::new()), Some(0));
        assert_eq!(d("/a/b", &HeaderMap::new()), None);
        assert_eq!(d("/v2/items", &gold), Some(0));
        assert_eq!(
            d("/v2/items", &HeaderMap::new()),
            None,
            "the header is required"
        );
        assert_eq!(
            d("/v2/items/x", &gold),
            None,
            "the regex matches the whole path"
        );
        let mut bronze = HeaderMap::new();
        bronze.insert("x-tier", "bronze".parse().unwrap());
        assert_eq!(d("/v2/items", &bronze), None);
    }

    #[test]
    fn a_prefix_of_slash_matches_everything() {
        let r = Routes {
            rules: vec![Rule {
                matches: vec![Match {
                    path: Some(PathMatch::Prefix("/".into())),
                    ..Match::default()
                }],
                action: Action::Deny,
            }],
            default: Action::Class("x".into()),
        };
        assert_eq!(
            r.decide(&Method::PUT, "/anything", &HeaderMap::new()).rule,
            Some(0)
        );
    }
}
