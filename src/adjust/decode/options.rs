//! Decoder settings that come from configuration: parameter aliases and columns of the user's
//! own.

use super::*;

/// Names Adjust's own material uses for a placeholder that has another column name.
const BUILTIN_ALIASES: &[(&str, &str)] = &[("publisher_parameter", "publisher_parameters")];

/// A column of the user's own (`--column NAME:TYPE`) for a key the catalog does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomColumn {
    /// Made `'static` once at start-up (a handful of names from the command line).
    pub name: &'static str,
    pub ty: Ty,
}

impl CustomColumn {
    /// `NAME:TYPE`, TYPE one of `string`, `lowcard`, `int`, `float`, `bool`, `timestamp`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (name, ty) = spec
            .trim()
            .split_once(':')
            .ok_or("must be NAME:TYPE, e.g. loyalty_tier:lowcard")?;
        let (name, ty) = (name.trim(), ty.trim());
        let ty = match ty {
            "string" => Ty::Str,
            "lowcard" => Ty::LowCard,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "bool" => Ty::Flag,
            "timestamp" => Ty::Time,
            other => {
                return Err(format!(
                    "type `{other}` is not one of string, lowcard, int, float, bool, timestamp"
                ));
            }
        };
        let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok_name {
            return Err(format!(
                "`{name}`: use lowercase letters, digits and underscores"
            ));
        }
        if index_of(name).is_some() {
            return Err(format!(
                "`{name}` is an Adjust placeholder: it has its column"
            ));
        }
        Ok(CustomColumn {
            name: Box::leak(name.to_owned().into_boxed_str()),
            ty,
        })
    }
}

/// Decoder settings that come from configuration.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Query keys that stand for a placeholder (`device_id` → `adid`), as catalog indexes.
    aliases: FxHashMap<String, u16>,
    /// Keys with a column of the user's own.
    columns: Vec<CustomColumn>,
}

impl DecodeOptions {
    /// Adds `alias` as another name for the placeholder `target`. Fails when `target` is not a
    /// placeholder, or when `alias` is itself one (it would shadow a real column).
    pub fn with_alias(mut self, alias: &str, target: &str) -> Result<Self, String> {
        let idx = index_of(target)
            .ok_or_else(|| format!("`{target}` is not an Adjust placeholder this sink knows"))?;
        if index_of(alias).is_some() {
            return Err(format!(
                "`{alias}` is itself a placeholder and cannot be an alias"
            ));
        }
        self.aliases.insert(alias.to_owned(), idx as u16);
        Ok(self)
    }

    /// Gives the key `column.name` a typed column of its own: its values go to the cold arrays
    /// (not to `extra`), typed as the column says.
    pub fn with_column(mut self, column: CustomColumn) -> Self {
        self.columns.retain(|c| c.name != column.name);
        self.columns.push(column);
        self
    }

    pub(super) fn custom(&self, key: &str) -> Option<CustomColumn> {
        self.columns.iter().find(|c| c.name == key).copied()
    }

    /// The default options plus the built-in aliases.
    pub fn new() -> Self {
        let mut opts = Self::default();
        for (alias, target) in BUILTIN_ALIASES {
            opts = opts.with_alias(alias, target).expect("built-in alias");
        }
        opts
    }

    /// The catalog index a query key stands for (a placeholder name or an alias of one).
    pub fn lookup(&self, key: &str) -> Option<usize> {
        match index_of(key) {
            Some(i) => Some(i),
            None if self.aliases.is_empty() => None,
            None => self.aliases.get(key).map(|&i| usize::from(i)),
        }
    }
}
