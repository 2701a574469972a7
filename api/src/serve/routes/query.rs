//! Query strings: repeated parameters allowed, unknown ones refused; and the options several
//! routes read from them (logs, stack services).

use berth_engine::container::LogOptions;
use chrono::{DateTime, Utc};

use crate::serve::error::ApiError;

/// Query parameters, some of which may repeat (`change=...&change=...`); unknown ones are
/// refused so that a misspelt option is not silently ignored.
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(crate) fn parse(raw: Option<String>, allowed: &[&str]) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!("unknown query parameter {k:?}")));
        }
        Ok(QueryParams(pairs))
    }

    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!("query parameter {name:?} given more than once")));
        }
        Ok(first)
    }

    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name)? {
            None => Ok(false),
            Some("1" | "true" | "True" | "TRUE") => Ok(true),
            Some("" | "0" | "false" | "False" | "FALSE") => Ok(false),
            Some(v) => {
                Err(ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not a boolean")))
            }
        }
    }

    pub(crate) fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not a number"))
                })
            })
            .transpose()
    }
}

/// `follow`, `tail`, `since`, `until`, `stdout` and `stderr` of a logs call (without `stdout`
/// and `stderr`, both).
pub(crate) fn log_options(query: &QueryParams) -> Result<LogOptions, ApiError> {
    let (stdout, stderr) = match (query.flag("stdout")?, query.flag("stderr")?) {
        (false, false) => (true, true),
        both => both,
    };
    Ok(LogOptions {
        follow: query.flag("follow")?,
        tail: tail(query)?,
        since: time_param(query, "since")?,
        until: time_param(query, "until")?,
        stdout,
        stderr,
    })
}

/// `tail`: a number of lines, or `all`.
pub(crate) fn tail(query: &QueryParams) -> Result<Option<usize>, ApiError> {
    match query.one("tail")? {
        None | Some("all") | Some("") => Ok(None),
        Some(n) => n
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid tail {n:?}: a number of lines or \"all\""))),
    }
}

pub(crate) fn time_param(query: &QueryParams, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    query
        .one(name)?
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|_| {
                ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not an RFC 3339 time"))
            })
        })
        .transpose()
}

/// `?services=a,b` (or repeated) and `?t=N`.
pub(crate) fn services_and_timeout(query: &QueryParams) -> Result<(Vec<String>, Option<u32>), ApiError> {
    let services = query
        .all("services")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let timeout = match query.number("t")? {
        None => None,
        Some(t) if (0..=i64::from(u32::MAX)).contains(&t) => Some(t as u32),
        Some(t) => return Err(ApiError::bad_request(format!("query parameter \"t\": {t} is out of range"))),
    };
    Ok((services, timeout))
}
