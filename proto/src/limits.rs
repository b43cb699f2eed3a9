//! Limits of API members that more than one crate must respect.

/// The longest `stateDetails` the API returns, in characters.
pub const MAX_STATE_DETAILS: usize = 256;

/// `text` cut to fit `stateDetails` (ending in `…` when cut, on a character
/// boundary).
pub fn fit_details(text: &str) -> String {
    if text.chars().count() <= MAX_STATE_DETAILS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_STATE_DETAILS - 1).collect();
    cut.push('…');
    cut
}
