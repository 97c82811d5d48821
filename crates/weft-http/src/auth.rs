//! Bearer-token authentication: who is calling.
//!
//! A missing `Authorization` header is an anonymous caller; a header that is
//! present but malformed or unknown is refused with 401, never downgraded to
//! anonymous. Whether the caller may do a thing is decided by each handler,
//! except for the operator's endpoints, which take the [`Admin`] extractor:
//! only the admin token passes it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{AppState, Problem};
use weft_kernel::visibility::{Reader, View};
use weft_store::Role;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Admin,
    /// A local actor, by id.
    Actor(String),
}

impl Caller {
    /// Whether the caller may act as (or read everything of) `actor_id`.
    /// Another actor's token is refused with 403, not treated as anonymous.
    pub fn owns(&self, actor_id: &str) -> Result<bool, Problem> {
        match self {
            Self::Admin => Ok(true),
            Self::Actor(id) if id == actor_id => Ok(true),
            Self::Actor(id) => Err(Problem::forbidden(format!(
                "this token belongs to {id} and cannot act for {actor_id}; use that actor's token, or send none to read public data"
            ))),
            Self::Anonymous => Ok(false),
        }
    }

    /// What the caller may read of the log (`weft_kernel::visibility`).
    pub fn view(&self, kernel: &std::sync::Arc<weft_kernel::Kernel>) -> View {
        let reader = match self {
            Self::Anonymous => Reader::Anonymous,
            Self::Admin => Reader::Admin,
            Self::Actor(id) => Reader::Actor(id.clone()),
        };
        View::new(kernel.clone(), reader)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Ok(Self::Anonymous);
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        match state.kernel.authenticate(token)? {
            Some(Role::Admin) => Ok(Self::Admin),
            Some(Role::Actor(id)) => Ok(Self::Actor(id)),
            None => Err(Problem::unauthorized(
                "unknown token; use the token printed when the actor was created",
            )),
        }
    }
}

/// The admin token's caller: a handler that takes it runs only for the
/// node's operator. Without a token the request is refused with 401, with
/// an actor's with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let what = format!("`{} {}`", parts.method, parts.uri.path());
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Self),
            Caller::Anonymous => Err(Problem::unauthorized(format!(
                "{what} needs the admin token"
            ))),
            Caller::Actor(_) => Err(Problem::forbidden(format!(
                "{what} needs the admin token, not an actor's"
            ))),
        }
    }
}
