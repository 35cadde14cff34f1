//! One spelling per enum value. The journal, metric labels, the API and the
//! page all print an enum through its `as_str`; [`spelled!`](crate::spelled)
//! derives `Display` and comparison with that spelling (`result == "ok"`,
//! for readers of the journal such as the tests) from it, so the spelling
//! is written once, in `as_str`, and hostmedic itself matches the enum.

/// Implements `Display`, `PartialEq<str>` and `PartialEq<&str>` for enums
/// with a `fn as_str(self) -> &'static str`.
#[macro_export]
macro_rules! spelled {
    ($($ty:ty),+ $(,)?) => {$(
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::cmp::PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Color {
        Red,
        DarkBlue,
    }

    impl Color {
        fn as_str(self) -> &'static str {
            match self {
                Color::Red => "red",
                Color::DarkBlue => "dark_blue",
            }
        }
    }

    crate::spelled!(Color);

    #[test]
    fn display_and_comparison_use_as_str() {
        assert_eq!(Color::DarkBlue.to_string(), "dark_blue");
        assert!(Color::Red == "red");
        assert!(Color::Red != "Red");
        assert!(Color::DarkBlue == *"dark_blue");
    }
}
