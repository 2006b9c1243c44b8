use std::collections::BTreeMap;
use std::fmt;

/// The environment the configuration is resolved against: `${VAR}` interpolation, `CLAWLET_CONFIG`,
/// `HOME` and the `CLAWLET_WEBHOOKS__…` overrides.
///
/// Injected rather than read from `std::env` inside the crate, so tests describe their environment
/// instead of mutating the process's.
///
/// ```
/// use clawlet_config::Env;
///
/// let env = Env::empty().with("GITHUB_WEBHOOK_SECRET", "s3cr3t");
/// assert_eq!(env.get("GITHUB_WEBHOOK_SECRET"), Some("s3cr3t"));
/// assert_eq!(env.get("HOME"), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment; variables whose name or value is not UTF-8 are left out.
    pub fn process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// No variables at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// This environment with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

// Values are left out: the environment holds the very secrets the config interpolates.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}
