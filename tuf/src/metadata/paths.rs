//! Which target names a delegation covers: path patterns and path hash prefixes.
//!
//! A pattern and a target name are split at `/` and must have the same number of parts;
//! each part is matched shell-style (`*` any run of characters, `?` one character,
//! `[abc]`, `[a-z]`, `[!abc]` one character from or not from a set). So `*` never matches
//! across a `/`: `v*` covers `v1.2` but not `v1/extra`.

/// True when `target` matches the delegation path `pattern`.
///
/// ```
/// use vouch_tuf::metadata::path_pattern_matches;
/// assert!(path_pattern_matches("v*", "v1.0"));
/// assert!(path_pattern_matches("releases/*.tgz", "releases/a.tgz"));
/// assert!(!path_pattern_matches("releases/*", "releases/a/b"));
/// assert!(!path_pattern_matches("*", "a/b"));
/// ```
pub fn path_pattern_matches(pattern: &str, target: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let tgt: Vec<&str> = target.split('/').collect();
    pat.len() == tgt.len()
        && pat.iter().zip(&tgt).all(|(p, t)| {
            let p: Vec<char> = p.chars().collect();
            let t: Vec<char> = t.chars().collect();
            segment_matches(&p, &t)
        })
}

/// True when the lowercase hex SHA-256 of `target` starts with `prefix`.
///
/// ```
/// use vouch_tuf::metadata::path_hash_prefix_matches;
/// // sha256("v1") = "3bfc2695...".
/// assert!(path_hash_prefix_matches("3bf", "v1"));
/// assert!(!path_hash_prefix_matches("00", "v1"));
/// ```
pub fn path_hash_prefix_matches(prefix: &str, target: &str) -> bool {
    let digest = ring::digest::digest(&ring::digest::SHA256, target.as_bytes());
    crate::hex::encode(digest.as_ref()).starts_with(prefix)
}

/// One `[...]` set starting at `p[0] == '['`: whether `c` is in it, and the set's length.
/// `None` when the bracket is not closed (it is then an ordinary character).
fn match_set(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let mut first = true;
    let mut found = false;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let hi = p[i + 2];
            if ch <= c && c <= hi {
                found = true;
            }
            i += 3;
        } else {
            if ch == c {
                found = true;
            }
            i += 1;
        }
    }
}

fn segment_matches(p: &[char], t: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*`: linear in practice,
    // never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match match_set(&p[pi..], t[ti]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (t[ti] == '[').then_some(1),
            },
            Some(c) => (*c == t[ti]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("v*", "v", true),
            ("v*", "xv1", false),
            ("*.tgz", "a.tgz", true),
            ("*.tgz", "a.tgz.sig", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[!abc]x", "dx", true),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("[", "[", true),
            ("[ab", "[ab", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("dir/*/file", "dir/x/file", true),
            ("dir/*/file", "dir/x/y/file", false),
            ("*", "a/b", false),
            ("*/*", "a/b", true),
            ("V*", "v1", false),
            ("é*", "été", true),
            ("sha256:*", "sha256:abcd", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(
                path_pattern_matches(p, t),
                want,
                "pattern {p:?} target {t:?}"
            );
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = "*a".repeat(50);
        let t = "a".repeat(5000) + "b";
        assert!(!path_pattern_matches(&p, &t));
    }

    #[test]
    fn hash_prefixes() {
        // sha256("") = e3b0c442...
        assert!(path_hash_prefix_matches("e3b0", ""));
        assert!(path_hash_prefix_matches("", "x"));
        assert!(!path_hash_prefix_matches("E3", ""));
    }
}
