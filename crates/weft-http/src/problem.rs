//! Errors as `application/problem+json` (RFC 9457), each with a detail a
//! person can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use weft_kernel::KernelError;

/// An HTTP error response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn unprocessable(field: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
            field,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // Every 503 here is transient (a busy pool, a deadline, a
        // projection being built, a shutdown): say when to come back.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        response
    }
}

impl From<KernelError> for Problem {
    fn from(error: KernelError) -> Self {
        match error {
            KernelError::Field { field, message } => {
                let detail = format!("`{field}` {message}");
                Self::unprocessable(Some(field), detail)
            }
            KernelError::Identity(e) => Self::unprocessable(identity_field(&e), e.to_string()),
            KernelError::Envelope(e) => Self::unprocessable(None, e.to_string()),
            KernelError::Rejected(e) if e.transient => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            KernelError::Rejected(e) => Self::unprocessable(e.field.clone(), e.to_string()),
            KernelError::Module(e) => {
                use weft_runtime::RuntimeError as R;
                let status = match &e {
                    R::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    R::Invalid(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self::new(status, e.to_string())
            }
            KernelError::NotFound(what) => Self::not_found(format!("{what} not found")),
            KernelError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            KernelError::Quota(m) => Self::new(StatusCode::INSUFFICIENT_STORAGE, m),
            e @ KernelError::BatchRefused { .. } => Self::unprocessable(None, e.to_string()),
            KernelError::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, m),
            KernelError::Busy(busy) => Self::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()),
            KernelError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the node is shutting down; retry shortly",
            ),
            e @ (KernelError::Store(_)
            | KernelError::KeyStore(_)
            | KernelError::MissingSecret(_)
            | KernelError::NotCommitted(_)) => {
                tracing::error!(error = %e, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the node could not store this; nothing was written (see the node's log)",
                )
            }
        }
    }
}

impl From<weft_store::StoreError> for Problem {
    fn from(error: weft_store::StoreError) -> Self {
        KernelError::Store(error).into()
    }
}

/// The request field an identity rule is about, if it is about one.
fn identity_field(error: &weft_core::identity::IdentityError) -> Option<String> {
    use weft_core::identity::IdentityError as E;
    match error {
        E::Object { field, .. } => Some(field.clone()),
        E::Seq { .. } => Some("seq".into()),
        E::Prev { .. } => Some("prev".into()),
        E::WrongActor { .. } => Some("actor".into()),
        E::Lockout(_) | E::Key(_) | E::UnknownKey(_) => Some("object.keys".into()),
        E::KeyNotValid { .. } | E::Purpose { .. } | E::BadSignature(_) => Some("proof".into()),
        E::NotGenesis | E::AlreadyCreated => Some("type".into()),
    }
}
