//! The stable code of every diagnostic (issue 33, point 4), as minijinja's
//! `ErrorKind` names the kind of an error: printed in its line
//! (`warning[unused-override]: ...`), documented in README.md ("Diagnostic
//! codes"), and what `--allow-warning CODE` names.
//!
//! Codes are kebab-case names, as clippy's and rustc's lints are
//! (`#[allow(clippy::needless_return)]`, `-A unused-variables`): a CI
//! file that allows `self-signed-ca` says what it accepts, where
//! ShellCheck's `SC2086` or a `W012` needs a table to be read, and a
//! misspelt name is close to the right one, so it gets a suggestion.
//! Errors have one code per kind of problem (the input, the schema, a
//! rule, the tree, the output...): an error cannot be allowed, so the
//! code only says where to look. Warnings and notices have one code per
//! condition, since a fleet's CI chooses among them.
//!
//! A code is never renamed or reused for another meaning; a retired one
//! is removed from README.md with its last use. This module only names
//! codes; it never decides whether something is wrong.

use crate::diagnostic::Severity;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $severity:ident; )*) => {
        /// The code of a diagnostic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in README.md's order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The name printed and given to `--allow-warning`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// The severity of every diagnostic of this code.
            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

codes! {
    /// A values input cannot be read or parsed: a file, YAML, `--set`, a
    /// preset, a merge clash.
    Input = "input", Error;
    /// A value does not match the schema.
    Schema = "schema", Error;
    /// Values contradict each other or what meshgen can render.
    Rule = "rule", Error;
    /// A template failed to render (a meshgen bug).
    Template = "template", Error;
    /// The rendered tree is inconsistent: a duplicate object, a dangling
    /// reference, a patch of nothing.
    Tree = "tree", Error;
    /// An object or a delivery unit over a bound.
    Limit = "limit", Error;
    /// The output directory cannot be written, replaced or compared safely.
    Output = "output", Error;
    /// `meshgen access`: a tree or a check file it cannot read.
    Access = "access", Error;
    /// Arguments that do not fit together (exit code 2, as clap's own).
    Usage = "usage", Error;
    /// A fleet file that cannot be read, or clusters that clash (names,
    /// destinations, hostnames, delivery settings).
    Fleet = "fleet", Error;

    /// An unknown key in a section meshgen does not render.
    UnknownKeyIgnored = "unknown-key-ignored", Warning;
    /// An image key in a section that runs no such image.
    ImageKeyUnused = "image-key-unused", Warning;
    /// A key deployKF removed.
    RemovedKey = "removed-key", Warning;
    /// A deployKF section meshgen does not render.
    SectionIgnored = "section-ignored", Warning;
    /// `valuesOverrides` of a component that does not use them.
    UnusedOverride = "unused-override", Warning;
    /// A key with no effect in this combination of values.
    NoEffect = "no-effect", Warning;
    /// A value of a mesh setting deployKF requires, which meshgen ignores.
    RequiredMeshSetting = "required-mesh-setting", Warning;
    /// The gateway certificate is signed by meshgen's self-signed CA.
    SelfSignedCa = "self-signed-ca", Warning;
    /// Without the HTTP redirect, the relay needs the issuing CA.
    RelayNeedsCa = "relay-needs-ca", Warning;
    /// Your own gateway's namespace gets no namespace-wide policies.
    NoNamespaceZeroTrust = "no-namespace-zero-trust", Warning;
    /// `matchSNI: false` beside apps meshgen does not render.
    MatchSniOff = "match-sni-off", Warning;
    /// KServe's wildcard host: the certificate and KServe's own settings.
    KserveWildcard = "kserve-wildcard", Warning;
    /// An app without a `selector`.
    AppWithoutSelector = "app-without-selector", Warning;
    /// An OIDC redirect URL not under the gateway's public URL.
    RedirectElsewhere = "redirect-elsewhere", Warning;
    /// Profile members who can never be admitted.
    MembersNeverAdmitted = "members-never-admitted", Warning;
    /// IdP groups from any of several dex connectors.
    GroupsFromAnyConnector = "groups-from-any-connector", Warning;
    /// What meshgen relies on in your own Istio and cannot see.
    OwnIstioUnverified = "own-istio-unverified", Warning;
    /// Your own Istio is older than meshgen needs.
    OwnIstioTooOld = "own-istio-too-old", Warning;
    /// The Gateway API CRDs go down across the v1.5.0 admission policy.
    CrdDowngrade = "crd-downgrade", Warning;
    /// The Gateway API CRDs leave the tree and stay in the cluster.
    CrdsLeftBehind = "crds-left-behind", Warning;
    /// What an interrupted or earlier run left could not be removed.
    Leftover = "leftover", Warning;
    /// A swap stopped half-way was found and undone (or could not be).
    InterruptedSwap = "interrupted-swap", Warning;
    /// Profile NetworkPolicies without the API server's addresses.
    ApiServerUnset = "api-server-unset", Warning;
    /// A fleet's clusters run Istio minors more than one apart.
    FleetIstioSkew = "fleet-istio-skew", Warning;
    /// A fleet's cluster turns off a security setting its base turns on.
    FleetWeakerThanBase = "fleet-weaker-than-base", Warning;
    /// A fleet's Argo CD cluster without a repository: left out of the ApplicationSet.
    FleetRepoUnset = "fleet-repo-unset", Warning;

    /// Argo CD is the engine but no repository is set.
    ArgocdRepoUnset = "argocd-repo-unset", Notice;
    /// A Helm chart is not in the stream on stdout.
    ChartNotStreamed = "chart-not-streamed", Notice;
    /// What `meshgen access matrix` does not model.
    NotModelled = "not-modelled", Notice;
    /// Another run holds the output's parent directory.
    OutputLocked = "output-locked", Notice;
}

impl Code {
    /// The code named `name`, or why there is none (with the closest
    /// name when one is close enough to be a typo).
    pub fn from_name(name: &str) -> Result<Code, String> {
        if let Some(c) = Code::ALL.iter().find(|c| c.name() == name) {
            return Ok(*c);
        }
        let known = Code::ALL.iter().map(|c| c.name());
        Err(match crate::schema::suggest(name, known) {
            Some(close) => format!("no diagnostic has the code `{name}`; did you mean `{close}`?"),
            None => format!(
                "no diagnostic has the code `{name}` (README.md, \"Diagnostic codes\", lists them)"
            ),
        })
    }

    /// A code `--allow-warning` takes: a warning's or a notice's.
    pub fn allowable(name: &str) -> Result<Code, String> {
        let code = Code::from_name(name)?;
        match code.severity() {
            Severity::Error => Err(format!(
                "`{name}` is the code of errors, which cannot be allowed"
            )),
            Severity::Warning | Severity::Notice => Ok(code),
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_and_found_back() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.name()), "{c} twice");
            assert!(
                c.name()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{c}"
            );
            assert_eq!(Code::from_name(c.name()), Ok(*c));
        }
    }

    #[test]
    fn a_typo_gets_the_closest_code_and_an_error_code_is_not_allowable() {
        assert_eq!(
            Code::allowable("unused-overide"),
            Err(
                "no diagnostic has the code `unused-overide`; did you mean `unused-override`?"
                    .into()
            )
        );
        assert_eq!(
            Code::allowable("schema"),
            Err("`schema` is the code of errors, which cannot be allowed".into())
        );
        assert_eq!(Code::allowable("self-signed-ca"), Ok(Code::SelfSignedCa));
        assert!(Code::from_name("zzzzzzzz")
            .unwrap_err()
            .contains("README.md"));
    }
}
