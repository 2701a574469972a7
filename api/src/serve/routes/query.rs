//! Query strings: repeated parameters allowed, unknown ones refused.

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
