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

/// `rotationSize` (`2KB`, `1.5M`, `2GB`…; K, M and G are powers of 1024) in
/// bytes; None if it is not one.
pub fn rotation_bytes(size: &str) -> Option<u64> {
    let number_len = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let number: f64 = size[..number_len].parse().ok()?;
    let unit = match size[number_len..].trim_end_matches(['B', 'b']) {
        "K" => 1u64 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    Some((number * unit as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_sizes_are_read_in_binary_units() {
        assert_eq!(rotation_bytes("2KB"), Some(2048));
        assert_eq!(rotation_bytes("1.5M"), Some(1_572_864));
        assert_eq!(rotation_bytes("2Gb"), Some(2 << 30));
        assert_eq!(rotation_bytes("2TB"), None);
        assert_eq!(rotation_bytes("KB"), None);
    }
}
