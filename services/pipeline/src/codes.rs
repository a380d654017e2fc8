//! Push ids and recipient link codes.

use rand::distributions::Alphanumeric;
use rand::Rng;

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A push id: `p` + 14 base-36 characters (15 bytes, the most Alibaba's voice `OutId` takes).
pub fn push_id() -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(15);
    s.push('p');
    for _ in 0..14 {
        s.push(BASE36[rng.gen_range(0..36)] as char);
    }
    s
}

/// A recipient link code: 22 alphanumeric characters (~130 bits), unguessable.
pub fn link_code() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(22)
        .map(char::from)
        .collect()
}

/// An id for records operators create (policies, campaigns, operators).
pub fn record_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..12)
        .map(|_| BASE36[rng.gen_range(0..36)] as char)
        .collect();
    format!("{prefix}_{tail}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let p = super::push_id();
        assert_eq!(p.len(), 15);
        assert!(p.starts_with('p'));
        assert_eq!(super::link_code().len(), 22);
        assert_ne!(super::link_code(), super::link_code());
        assert!(super::record_id("cmp").starts_with("cmp_"));
    }
}
