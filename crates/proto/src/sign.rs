//! TEMP STUB (not committed)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("missing")]
    Missing,
    #[error("expired")]
    Expired { exp: u64, now: u64 },
}
pub fn signature(_s: &[u8], _a: Action, _v: &str, _ap: &str, _st: &str, _e: u64) -> String {
    String::new()
}
pub fn verify(
    _s: &[u8],
    _a: Action,
    _v: &str,
    _ap: &str,
    _st: &str,
    _q: &str,
    _n: u64,
) -> Result<u64, SignError> {
    Err(SignError::Missing)
}
pub fn session_token(_k: &[u8], _v: &str, _ap: &str, _st: &str, _id: u64, _e: u64) -> String {
    String::new()
}
pub fn verify_session_token(
    _k: &[u8],
    _v: &str,
    _ap: &str,
    _st: &str,
    _t: &str,
    _n: u64,
) -> Result<(u64, u64), SignError> {
    Err(SignError::Missing)
}
