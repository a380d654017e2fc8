//! Positions in a rule's source text: byte offsets (what the CEL parser records per
//! token) turned into the 1-based line and column (in characters) that operators see.

use super::RuleError;

/// The source text of a rule being checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'s> {
    pub(crate) text: &'s str,
}

impl<'s> Source<'s> {
    pub(crate) fn new(text: &'s str) -> Self {
        Self { text }
    }

    /// 1-based line and column (counted in characters) of a byte offset; offsets past
    /// the end point just after the last character.
    pub(crate) fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = self.floor_boundary(offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (to_u32(line), to_u32(column))
    }

    /// An error located at a byte offset.
    pub(crate) fn error_at(&self, offset: usize, message: impl Into<String>) -> RuleError {
        let (line, column) = self.line_col(offset);
        RuleError {
            line,
            column,
            message: message.into(),
        }
    }

    /// The start of the name written before a `(` at `paren` (`size` in `size(x)`,
    /// `startsWith` in `s.startsWith('a')`); `paren` itself when there is none.
    pub(crate) fn name_before(&self, paren: usize) -> usize {
        let paren = self.floor_boundary(paren.min(self.text.len()));
        let head = self.text[..paren].trim_end();
        let name_len = head
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        if name_len == 0 {
            paren
        } else {
            head.len() - name_len
        }
    }

    /// The name written before a `(` at `paren`, if any.
    pub(crate) fn word_before(&self, paren: usize) -> &'s str {
        let start = self.name_before(paren);
        if start >= paren {
            return "";
        }
        let text: &'s str = self.text;
        let tail = &text[start..];
        let len = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        &tail[..len]
    }

    fn floor_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let s = Source::new("'浦东' == x");
        // `==` starts at byte 9 (each Chinese character is 3 bytes), character 5.
        assert_eq!(s.line_col(9), (1, 6));
        assert_eq!(s.line_col(0), (1, 1));
    }

    #[test]
    fn lines_are_counted() {
        let s = Source::new("a\n  && b");
        assert_eq!(s.line_col(4), (2, 3));
        assert_eq!(s.line_col(100), (2, 7));
    }

    #[test]
    fn finds_the_name_before_a_paren() {
        let s = Source::new("name.startsWith ('a') && size(tags) > 1");
        assert_eq!(s.name_before(16), 5);
        assert_eq!(s.word_before(16), "startsWith");
        assert_eq!(s.word_before(29), "size");
        assert_eq!(s.word_before(0), "");
    }

    #[test]
    fn errors_carry_positions() {
        let e = Source::new("ab\ncd").error_at(4, "why");
        assert_eq!((e.line, e.column, e.message.as_str()), (2, 2, "why"));
    }
}
