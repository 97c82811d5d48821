//! Reading a JSON request body with a size cap, as problem responses.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::Problem;

/// Reads `body` as a JSON object of at most `limit` bytes:
/// 413 over the limit, 400 if it is not a JSON object.
pub async fn json_object(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Map<String, Value>, Problem> {
    parse_object(&bytes(headers, body, limit).await?)
}

/// Reads `body`, at most `limit` bytes (413 past it).
pub async fn bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, Problem> {
    let too_large = || {
        Problem::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the node's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// `bytes` as a JSON object: 400 if it is not one.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request("the body must be a JSON object")),
        Err(e) => Err(Problem::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}
