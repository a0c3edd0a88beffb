//! `deploykf_core.deploykf_profiles_generator`: users, groups and the
//! profiles (team namespaces) meshgen renders for them.

use super::text::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// deployKF's profiles generator (plus our `output`); its
/// `valuesOverrides` is ignored.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfilesGenerator {
    /// Render the profiles.
    pub enabled: bool,
    /// meshgen: namespaces renders each profile's namespace, RBAC and
    /// policies directly; profiles renders Kubeflow Profile objects (for
    /// clusters running the Kubeflow Profiles controller) plus member
    /// access.
    #[schemars(transform = untyped)]
    pub output: ProfilesOutput,
    /// meshgen: the Pod Security level every profile namespace enforces
    /// (label `pod-security.kubernetes.io/enforce`); null: no label, the
    /// cluster's default. With `output: profiles` Kubeflow's profile
    /// controller labels the namespaces from its namespace-labels.yaml
    /// (Kubeflow's applications/profiles/pss: baseline): keep this equal
    /// to it.
    #[serde(default)]
    #[schemars(transform = untyped)]
    pub namespace_pod_security: Option<super::PodSecurityLevel>,
    /// Extra Kubernetes manifests rendered with the profiles (YAML strings
    /// or maps).
    #[serde(default)]
    #[schemars(extend("items" = {"type": ["string", "object"]}))]
    pub extra_manifests: Vec<Value>,
    /// Defaults for every profile.
    pub profile_defaults: ProfileDefaults,
    /// Users that profiles reference by id.
    pub users: Vec<User>,
    /// Groups of users that profiles reference by id.
    pub groups: Vec<Group>,
    /// The profiles to render.
    pub profiles: Vec<Profile>,
    /// meshgen: how `idpGroup` members are recognised: the verified
    /// token's claim that lists the user's groups, and the prefix the
    /// Kubernetes API server puts before them.
    pub idp_groups: IdpGroups,
    /// meshgen: NetworkPolicies in every profile namespace denying ingress
    /// but from the namespace itself, the gateway and Kubeflow's
    /// controllers.
    pub network_policy: super::NetworkPolicy,
}

/// How `idpGroup` members are recognised (`idpGroups`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdpGroups {
    /// The claim of the verified token that lists the user's groups
    /// (dex and oauth2-proxy: groups); the profile policies match
    /// request.auth.claims[<claim>].
    #[schemars(
        pattern(CLAIM_NAME),
        length(min = 1, max = 253),
        extend("x-meshgen-expected" = CLAIM_NAME_IS)
    )]
    pub claim: String,
    /// Put before each group in the RoleBindings' Group subjects: exactly
    /// the API server's --oidc-groups-prefix (claimMappings.groups.prefix).
    #[schemars(
        pattern(GROUP_PREFIX),
        length(max = 63),
        extend("x-meshgen-expected" = GROUP_PREFIX_IS)
    )]
    pub prefix: String,
    /// meshgen: the id of the dex connector `idpGroup` groups must come
    /// from; the profile policies then also require the verified token's
    /// federated_claims.connector_id (dex adds it for the federated:id
    /// scope, which oauth2-proxy then asks for). null: groups from any
    /// connector count.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub connector: Option<String>,
}

/// What the profiles generator renders (`output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfilesOutput {
    Namespaces,
    Profiles,
}

impl ProfilesOutput {
    /// The value as written in the values file (and passed to templates).
    pub fn as_str(self) -> &'static str {
        match self {
            ProfilesOutput::Namespaces => "namespaces",
            ProfilesOutput::Profiles => "profiles",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileDefaults {
    /// Prefix of every profile's namespace name.
    #[schemars(
        pattern(NAME_PREFIX),
        length(max = 62),
        extend("x-meshgen-expected" = r#""" or a prefix of lowercase letters, digits and "-""#)
    )]
    pub profile_name_prefix: String,
    /// Default owner of profiles (treat it as a break-glass admin account).
    #[schemars(pattern(EMAIL), length(max = 254), extend("x-meshgen-expected" = EMAIL_IS))]
    pub owner_email: String,
    /// A member's access to the profile.
    #[schemars(transform = require_all)]
    pub member_access: Access,
    /// Default plugins of profiles.
    pub plugins: Vec<Plugin>,
    /// A Kubernetes ResourceQuotaSpec; an empty map renders no
    /// ResourceQuota.
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub resource_quota_spec: Map<String, Value>,
    /// Per-tool settings of the profile.
    pub tools: Tools,
    /// meshgen: the egress of profiles that set none.
    pub egress: super::ProfileEgress,
}

/// A member's access to the profile.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    /// edit binds ClusterRole/kubeflow-edit, view binds
    /// ClusterRole/kubeflow-view.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["edit", "view"]), transform = untyped)]
    pub role: Option<String>,
    /// Whether the member may connect to notebooks in the profile (creating
    /// them is governed by role).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub notebooks_access: Option<bool>,
}

/// A profile plugin.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    /// AwsIamForServiceAccount (EKS IRSA) or WorkloadIdentity (GKE).
    #[schemars(
        extend("enum" = ["AwsIamForServiceAccount", "WorkloadIdentity"]),
        transform = untyped
    )]
    pub kind: String,
    /// awsIamRole (and AnnotateOnly) for AwsIamForServiceAccount;
    /// gcpServiceAccount for WorkloadIdentity.
    pub spec: Map<String, Value>,
}

/// Per-tool settings of the profile.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tools {
    /// Kubeflow Pipelines settings.
    #[serde(default)]
    #[schemars(with = "KubeflowPipelines")]
    pub kubeflow_pipelines: Option<KubeflowPipelines>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeflowPipelines {
    /// Kubeflow Pipelines object-store credentials of the profile: names of
    /// an existing Secret and its keys (never values).
    #[serde(default)]
    #[schemars(with = "ObjectStoreAuth")]
    pub object_store_auth: Option<ObjectStoreAuth>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectStoreAuth {
    /// Name of the Secret; {profile_name} is replaced by the profile name.
    #[serde(default)]
    #[schemars(with = "String", length(max = 253))]
    pub existing_secret: Option<String>,
    /// Namespace of the Secret (empty: the profile's namespace).
    #[serde(default)]
    #[schemars(
        with = "String",
        pattern(OPT_DNS_LABEL),
        length(max = 63),
        extend("x-meshgen-expected" = OPT_DNS_LABEL_IS)
    )]
    pub existing_secret_namespace: Option<String>,
    /// Key of the access key in the Secret.
    #[serde(default)]
    #[schemars(with = "String", length(max = 253))]
    pub existing_secret_access_key_key: Option<String>,
    /// Key of the secret key in the Secret.
    #[serde(default)]
    #[schemars(with = "String", length(max = 253))]
    pub existing_secret_secret_key_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Unique id of the user.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// The user's email, exactly as the identity provider sends it.
    #[schemars(pattern(EMAIL), length(max = 254), extend("x-meshgen-expected" = EMAIL_IS))]
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Unique id of the group.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// Ids of the users in the group.
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Name of the profile; the namespace is the prefix plus this name.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub name: String,
    /// Members and their access; a user reached several ways gets the most
    /// permissive access.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Owner of this profile (default: profileDefaults.ownerEmail).
    #[serde(default)]
    #[schemars(
        with = "String",
        pattern(EMAIL),
        length(max = 254),
        extend("x-meshgen-expected" = EMAIL_IS)
    )]
    pub owner_email: Option<String>,
    /// Plugins of this profile (default: profileDefaults.plugins; [] for
    /// none).
    #[serde(default)]
    #[schemars(with = "Vec<Plugin>")]
    pub plugins: Option<Vec<Plugin>>,
    /// A Kubernetes ResourceQuotaSpec; an empty map renders no
    /// ResourceQuota.
    #[serde(default)]
    #[schemars(with = "Map<String, Value>")]
    pub resource_quota_spec: Option<Map<String, Value>>,
    /// Per-tool settings of the profile.
    #[serde(default)]
    #[schemars(with = "Tools")]
    pub tools: Option<Tools>,
    /// meshgen: the id of the dex connector this profile's idpGroup
    /// members' groups must come from (default: idpGroups.connector).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub idp_connector: Option<String>,
    /// meshgen: this profile's egress (default: profileDefaults.egress).
    #[serde(default)]
    #[schemars(with = "super::ProfileEgress")]
    pub egress: Option<super::ProfileEgress>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Id of a user (exclusive with group and idpGroup).
    #[serde(default)]
    #[schemars(with = "String")]
    pub user: Option<String>,
    /// Id of a group (exclusive with user and idpGroup).
    #[serde(default)]
    #[schemars(with = "String")]
    pub group: Option<String>,
    /// meshgen: a group of the identity provider, exactly as the token's
    /// groups claim (idpGroups.claim) lists it (exclusive with user and
    /// group).
    #[serde(default, rename = "idpGroup")]
    #[schemars(
        with = "String",
        pattern(IDP_GROUP),
        length(max = 256),
        extend("x-meshgen-expected" = IDP_GROUP_IS)
    )]
    pub idp_group: Option<String>,
    /// A member's access to the profile.
    #[serde(default)]
    #[schemars(with = "Access")]
    pub access: Option<Access>,
}
