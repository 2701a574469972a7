//! Docker's query strings: unknown parameters are ignored (as dockerd does, clients of every
//! version send some), booleans are `1`/`true`/`0`/`false`, and `filters` is a JSON object.

use crate::serve::error::ApiError;

/// A request's query parameters.
pub struct DockerQuery(Vec<(String, String)>);

impl DockerQuery {
    pub fn parse(raw: Option<&str>) -> DockerQuery {
        DockerQuery(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `name` (Docker reads the last one given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter; absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.flag_or(name, false)
    }

    /// A boolean parameter, `default` when absent or empty.
    pub fn flag_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) if v == "1" || v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => {
                Err(ApiError::bad_request(format!("invalid value for {name}: {v:?} is not a boolean")))
            }
        }
    }

    /// An integer parameter; absent or empty is `None`.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {name}: {v:?} is not an integer"))
            }),
        }
    }

    /// Docker's `since`/`until`: Unix seconds, maybe with a fraction (the CLI turns `10m` into
    /// one); absent, empty or 0 is `None`.
    pub fn unix_time(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        let Some(text) = self.get(name).filter(|v| !v.is_empty() && *v != "0") else { return Ok(None) };
        let bad =
            || ApiError::bad_request(format!("invalid value for {name}: {text:?} is not a Unix timestamp"));
        let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        } else {
            format!("{frac:0<9}").parse().map_err(|_| bad())?
        };
        chrono::DateTime::from_timestamp(secs, nanos).map(Some).ok_or_else(bad)
    }

    /// The `filters` parameter as `key=value` pairs, the form berth's own filters take.
    pub fn filters(&self) -> Result<Vec<String>, ApiError> {
        decode_filters(self.get("filters"))
    }
}

/// Docker's `filters` JSON: `{"status": {"running": true}}`, or the older
/// `{"status": ["running"]}`; as `key=value` pairs.
pub fn decode_filters(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else { return Ok(Vec::new()) };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("Invalid filter: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request("Invalid filter: the filters must be a JSON object"));
    };
    let mut pairs = Vec::new();
    for (key, values) in map {
        match values {
            serde_json::Value::Object(set) => {
                for (v, on) in set {
                    if on != serde_json::Value::Bool(false) {
                        pairs.push(format!("{key}={v}"));
                    }
                }
            }
            serde_json::Value::Array(list) => {
                for v in list {
                    match v {
                        serde_json::Value::String(v) => pairs.push(format!("{key}={v}")),
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "Invalid filter '{key}': {other} is not a string"
                            )))
                        }
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter '{key}': {other} is not a list of values"
                )))
            }
        }
    }
    Ok(pairs)
}

/// berth's own filter errors (`invalid filter 'status=x': choose ...`, shared with `/api/v1`)
/// in dockerd's words: `Invalid filter 'status=x'`.
pub fn filter_error_in_dockers_words(e: ApiError) -> ApiError {
    let Some(rest) = e.message.strip_prefix("invalid filter '") else { return e };
    let Some((filter, _)) = rest.split_once('\'') else { return e };
    ApiError { message: format!("Invalid filter '{filter}'"), ..e }
}

#[cfg(test)]
mod tests {
    #[test]
    fn berths_filter_errors_in_dockers_words() {
        let e = ApiError::bad_request("invalid filter 'status=x': choose created or running");
        assert_eq!(filter_error_in_dockers_words(e).message, "Invalid filter 'status=x'");
        let other = ApiError::bad_request("something else");
        assert_eq!(filter_error_in_dockers_words(other).message, "something else");
    }

    use super::*;

    #[test]
    fn filters_in_both_forms() {
        assert_eq!(decode_filters(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            decode_filters(Some(r#"{"status":{"running":true,"exited":true},"label":["a=b"]}"#)).unwrap(),
            ["label=a=b", "status=exited", "status=running"]
        );
        for bad in ["[1]", "{", r#"{"a":1}"#, r#"{"a":[1]}"#] {
            assert_eq!(decode_filters(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
        let q = DockerQuery::parse(Some("all=1&stream=False&x=y&n=3"));
        assert!(q.flag("all").unwrap());
        assert!(!q.flag_or("stream", true).unwrap());
        assert!(q.flag_or("absent", true).unwrap());
        assert_eq!(q.int("n").unwrap(), Some(3));
        assert!(q.flag("x").is_err());
        let q = DockerQuery::parse(Some("since=1700000000.5&until=1700000001&bad=x&neg=1.-5"));
        assert_eq!(q.unix_time("since").unwrap().unwrap().timestamp_millis(), 1_700_000_000_500);
        assert_eq!(q.unix_time("until").unwrap().unwrap().timestamp(), 1_700_000_001);
        assert!(q.unix_time("bad").is_err());
        assert!(q.unix_time("neg").is_err());
        assert_eq!(q.unix_time("absent").unwrap(), None);
    }
}
