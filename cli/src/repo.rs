//! One image repository (GUN) as the CLI sees it: the server, `vouch-verifier`'s updater
//! over a persistent trusted-metadata cache, and the local keys that may sign its roles.
//!
//! Trust: the cache under `TRUST_DIR/tuf/<server>/<gun>/` holds the last trusted root; a
//! repository this trust directory created (`vouch init`) is pinned to the root it signed.
//! For a repository seen for the first time the root given with `--trust-root` is pinned, or
//! else the repository's first root is trusted on first use, with a warning that shows its
//! fingerprint. Every later answer comes from metadata the verifier checked.
//!
//! Expiry: two types, so that which metadata an answer comes from is settled by the type
//! system rather than by convention. A [`Repo`] ([`Repo::open`]) enforces expiry on every
//! refresh and holds only the updater's own, enforcing, trusted set: every command that
//! answers "is this image trusted" uses it (`verify`, `lookup`, `list`, `export`, `inspect`,
//! `root export`). An [`EditingRepo`] ([`EditingRepo::open_for_editing`]) loads the
//! repository with every check but expiry
//! ([`Expiry::IgnoreForEditing`](vouch_verifier::Expiry::IgnoreForEditing)) for the commands
//! that write its next state (`sign`, `unsign`, `renew`, `rotate`, `delegation`) and
//! `status`: expired root, targets or delegated roles can only be repaired by re-signing
//! them, so their owner must be able to load them. [`EditingRepo::warn_expired`] names what
//! has expired. An `EditingRepo` has no updater to ask about images, and only it publishes;
//! what both do (refresh, load delegated roles, name errors) is written once, on
//! [`Opened`], generic over the [`Mode`].
//!
//! Changes ([`EditingRepo::publish_change`]) are computed from freshly verified metadata,
//! signed in memory and published as one update; on a 409 the change is re-applied to the
//! newer metadata, re-signed and retried. Nothing is staged on disk, so a refused change
//! leaves nothing behind.
//!
//! Proposing ([`Submit::Propose`], the commands' `--propose`): the same update, signed by
//! the keys of each role held here (at least one, up to the threshold), goes to the
//! server's staged proposals instead, for the other key holders to approve. Only metadata
//! the server serves as published is ever trusted and cached here: a proposal's is not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use vouch_tuf::api::proposal::Proposal;
use vouch_tuf::crypto::{PrivateKey, Signer};
use vouch_tuf::metadata::{
    DelegatedRole, Key, MetaFile, Metadata, PathScope, Role, Root, Snapshot, Targets,
};
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{KeyId, RoleName, Threshold, TopLevelRole, Version};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::clock::{Clock, SystemClock};
use vouch_verifier::transport::{Bundle, BundleTransport, Transport, TransportError};
use vouch_verifier::{Error as VerifyError, TrustedSet, UpdateError, Updater};

use crate::context::Context;
use crate::keystore::Keystore;
use crate::output;
use crate::passphrase;
use crate::remote::{PublishError, Remote};
use crate::source::{Reading, TrustTransport};
use crate::trust;

/// Lifetimes of the metadata the CLI signs (as Notary's defaults).
pub const ROOT_LIFETIME_SECS: i64 = 10 * 365 * 86_400;
/// Lifetime of targets and delegated targets metadata.
pub const TARGETS_LIFETIME_SECS: i64 = 3 * 365 * 86_400;
/// Lifetime of a client-signed snapshot.
pub const SNAPSHOT_LIFETIME_SECS: i64 = 3 * 365 * 86_400;
/// How many times a change is re-applied after a 409 before giving up.
pub const MAX_PUBLISH_ATTEMPTS: u32 = 8;
/// Most delegated roles [`Opened::with_delegations`] loads (room for 4096 hashed bins and
/// other delegations besides); a target search still visits at most
/// [`Limits::max_delegations`](vouch_verifier::Limits) roles.
pub const MAX_LOADED_ROLES: usize = 8192;
/// The name of every hashed-bin role starts with this, followed by its hex prefix.
pub const BIN_PREFIX: &str = "bins-";
/// The numbers of hashed bins `vouch init --hashed-bins` makes.
pub const BIN_COUNTS: [usize; 3] = [16, 256, 4096];

/// The current time.
pub fn now() -> Timestamp {
    SystemClock.now()
}

/// A repository on the server with its verified metadata, opened in the mode `M`: the
/// consumer's [`Repo`] (expiry enforced) or the owner's [`EditingRepo`] (expiry not
/// enforced). What both do is written once, here; what only one may do is on that type.
pub struct Opened<M: Mode> {
    gun: Gun,
    remote: Remote,
    /// Where trust is read from (the server, or for a [`Repo`] the registry copy too),
    /// shared with the updater.
    source: Source,
    /// The source, named for messages.
    source_name: String,
    updater: Updater<Source>,
    /// Where the trusted set of the last refresh is, as the mode keeps it.
    mode: M,
    /// Whether updates are published or proposed.
    submit: Submit,
}

/// How an editing command sends its update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Submit {
    /// Published at once: each role signed by a threshold of its keys held here.
    #[default]
    Publish,
    /// Proposed for threshold signing by several people: each role signed by the keys of it
    /// held here (at least one, up to its threshold), sent to the server's proposals.
    Propose,
}

impl Submit {
    /// How a client-signed snapshot lists a role changed in the same update: with length and
    /// hashes for a publish; by version only for a proposal, whose files change with every
    /// signature added (as the server requires).
    pub fn meta_file(self, version: Version, bytes: &[u8]) -> MetaFile {
        match self {
            Submit::Publish => MetaFile::for_bytes(version, bytes),
            Submit::Propose => MetaFile::version_only(version),
        }
    }
}

/// A repository opened to answer whether an image is trusted (`verify`, `lookup`, `list`,
/// `export`, `inspect`, `root export`): every refresh enforces expiry, and the trusted set
/// is the updater's own. It holds no other set, so no answer can come from metadata that
/// was loaded with expiry not enforced.
pub type Repo = Opened<Enforcing>;

/// A repository opened by its owner to write its next state (`sign`, `unsign`, `renew`,
/// `rotate`, `delegation`) or to see it (`status`): every refresh applies every check but
/// expiry ([`Expiry::IgnoreForEditing`](vouch_verifier::Expiry::IgnoreForEditing)), so
/// expired roles can be re-signed. It has no updater to ask about images: answers come only
/// from a [`Repo`].
pub type EditingRepo = Opened<Editing>;

/// How a repository was opened: which refresh it runs and where it keeps the trusted set.
/// Implemented by [`Enforcing`] and [`Editing`] only.
pub trait Mode: Default + sealed::Sealed {
    /// Whether this mode reads registry copies (`--source`); an owner's writes start from
    /// the server's state only.
    const READS_COPIES: bool;
    /// Runs the update of `updater`, keeping its trusted set as this mode does.
    fn refresh(&mut self, updater: &mut Updater<Source>) -> Result<(), VerifyError>;
    /// The trusted set of the last successful refresh.
    fn trusted<'a>(&'a self, updater: &'a Updater<Source>) -> Option<&'a TrustedSet>;
}

mod sealed {
    /// Keeps [`Mode`](super::Mode) to the two modes of this module.
    pub trait Sealed {}
    impl Sealed for super::Enforcing {}
    impl Sealed for super::Editing {}
}

/// Expiry enforced ([`Expiry::Enforce`](vouch_verifier::Expiry::Enforce)): the trusted set
/// is the updater's, which answers.
#[derive(Debug, Default)]
pub struct Enforcing;

impl Mode for Enforcing {
    const READS_COPIES: bool = true;

    fn refresh(&mut self, updater: &mut Updater<Source>) -> Result<(), VerifyError> {
        updater.refresh()
    }

    fn trusted<'a>(&'a self, updater: &'a Updater<Source>) -> Option<&'a TrustedSet> {
        updater.trusted()
    }
}

/// Expiry not enforced
/// ([`Expiry::IgnoreForEditing`](vouch_verifier::Expiry::IgnoreForEditing)): the set
/// [`Updater::refresh_for_editing`] hands back is kept here, never in the updater (which
/// then has no answers).
#[derive(Debug, Default)]
pub struct Editing {
    set: Option<TrustedSet>,
}

impl Mode for Editing {
    const READS_COPIES: bool = false;

    fn refresh(&mut self, updater: &mut Updater<Source>) -> Result<(), VerifyError> {
        self.set = None;
        self.set = Some(updater.refresh_for_editing()?);
        Ok(())
    }

    fn trusted<'a>(&'a self, _updater: &'a Updater<Source>) -> Option<&'a TrustedSet> {
        self.set.as_ref()
    }
}

/// The transport a repository is read through.
pub type Source = Arc<TrustTransport>;

/// A change to one targets role: the role, and what to do to its metadata.
pub type RoleChange<'a> = (RoleName, &'a dyn Fn(&mut Targets) -> anyhow::Result<()>);

/// What a successful publish (or proposal) produced.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new version of the changed role.
    pub version: Version,
    /// How many attempts it took (more than one after conflicts).
    pub attempts: u32,
    /// With [`Submit::Propose`]: the proposal the server made of the update (published at
    /// once when its signatures already met every threshold).
    pub proposal: Option<Proposal>,
}

/// The sha256 hex of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

impl<M: Mode> Opened<M> {
    /// Opens `gun`, establishing trust in its root if this trust directory has none yet
    /// (or checking the pin against `--trust-root` and the pin file), and refreshes its
    /// metadata as the mode does.
    ///
    /// A [`Repo`] reads where `--source` says, and follows a `trust_from` pin: `gun` may
    /// be a promoted copy's repository, and the repository opened is then the one the pin
    /// maps it to ([`Reading`]). An [`EditingRepo`] reads the server only.
    fn open_in_mode(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        let (gun, source) = if M::READS_COPIES {
            let reading = Reading::of(ctx, gun)?;
            let source = TrustTransport::open(ctx, &reading)?;
            (reading.gun, source)
        } else {
            if let Some(at) = &ctx.oci_location {
                bail!("--server oci://{at} is a registry copy, read-only: changes go to a vouch server (--server https://…)");
            }
            (gun.clone(), TrustTransport::Server(Remote::new(ctx, gun)?))
        };
        let gun = &gun;
        let remote = Remote::new(ctx, gun)?;
        let source = Arc::new(source);
        let source_name = source.describe();
        let store = trust::ensure(ctx, gun, &source, &source_name)?;
        let updater = Updater::new(store, source.clone()).with_gun(gun.clone());
        let mut repo = Opened {
            gun: gun.clone(),
            remote,
            source,
            source_name,
            updater,
            mode: M::default(),
            submit: Submit::Publish,
        };
        repo.refresh()?;
        if let Some(said) = repo.source.fell_back() {
            output::warn(&said);
        }
        Ok(repo)
    }

    /// Where trust was read from, named as messages name it.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Runs the TUF update against the server, enforcing expiry or not as the repository was
    /// opened.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let refreshed = self.mode.refresh(&mut self.updater);
        refreshed.map_err(|e| self.verify_error(e))
    }

    /// Turns a verifier error into a message for this repository.
    pub fn verify_error(&self, e: VerifyError) -> anyhow::Error {
        verify_error(&self.source_name, &self.gun, self.updater.store(), e)
    }

    /// The repository.
    pub fn gun(&self) -> &Gun {
        &self.gun
    }

    /// The server side of this repository.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The trusted set of the last refresh.
    pub fn trusted(&self) -> anyhow::Result<&TrustedSet> {
        self.mode
            .trusted(&self.updater)
            .ok_or_else(|| anyhow!("trust data of {} not refreshed", self.gun))
    }

    /// The trusted set with every delegated role reachable from `targets` that the
    /// snapshot lists loaded and verified (fetched from the server, checked by the verifier's
    /// trusted set against its delegating role and the snapshot), at most
    /// [`MAX_LOADED_ROLES`] roles.
    pub fn with_delegations(&self) -> anyhow::Result<TrustedSet> {
        let mut set = self.trusted()?.clone();
        let limit = MAX_LOADED_ROLES.max(set.limits().max_delegations as usize);
        let mut visited = 0usize;
        let mut stack = vec![TopLevelRole::Targets.name()];
        while let Some(parent) = stack.pop() {
            let children: Vec<RoleName> = match set
                .targets_role(parent.as_str())
                .and_then(|p| p.signed().delegations.as_ref())
            {
                Some(d) => d.roles.iter().map(|r| r.name.clone()).collect(),
                None => continue,
            };
            for child in children.into_iter().rev() {
                if set.targets_role(child.as_str()).is_some() || !listed(&set, &child) {
                    continue;
                }
                visited += 1;
                if visited > limit {
                    bail!("{} delegates to more than {limit} roles", self.gun);
                }
                let req = set
                    .targets_request(&child)
                    .map_err(|e| anyhow!(e).context(format!("{child} of {}", self.gun)))?;
                let bytes = self
                    .source
                    .fetch(&req.file_name, req.max_len)
                    .map_err(|e| transport_error(&self.source_name, &self.gun, e))?;
                set.update_delegated(&child, &parent, &bytes).map_err(|e| {
                    anyhow!(e).context(format!("trust data of {} failed verification", self.gun))
                })?;
                stack.push(child);
            }
        }
        Ok(set)
    }

    /// The trusted set with the delegated roles `roles` loaded and verified. When the
    /// top-level targets delegates each of them directly, only those roles are fetched (the
    /// ones the snapshot does not list yet have no metadata to fetch); otherwise this is
    /// [`Opened::with_delegations`].
    pub fn with_roles(&self, roles: &[RoleName]) -> anyhow::Result<TrustedSet> {
        let mut set = self.trusted()?.clone();
        let targets = TopLevelRole::Targets.name();
        if !delegated_directly(&set, roles) {
            return self.with_delegations();
        }
        for role in roles {
            if role.top_level().is_some()
                || set.targets_role(role.as_str()).is_some()
                || !listed(&set, role)
            {
                continue;
            }
            let req = set
                .targets_request(role)
                .map_err(|e| anyhow!(e).context(format!("{role} of {}", self.gun)))?;
            let bytes = self
                .source
                .fetch(&req.file_name, req.max_len)
                .map_err(|e| transport_error(&self.source_name, &self.gun, e))?;
            set.update_delegated(role, &targets, &bytes).map_err(|e| {
                anyhow!(e).context(format!("trust data of {} failed verification", self.gun))
            })?;
        }
        Ok(set)
    }

    /// The hashed-bin role that `target` belongs in, when the top-level targets delegates to
    /// hashed bins ([`bins`]); `None` otherwise.
    pub fn bin_for(&self, target: &str) -> anyhow::Result<Option<RoleName>> {
        Ok(bin_for(self.trusted()?, target))
    }

    /// The delegated role `role` means in this repository: `targets/NAME` as parsed, or
    /// `NAME` itself when the top-level targets delegates to `NAME` (hashed bins are named
    /// `bins-PREFIX`, without `targets/`) and not to `targets/NAME`.
    pub fn resolve_role(&self, role: &RoleName) -> anyhow::Result<RoleName> {
        let Some(short) = role.as_str().strip_prefix("targets/") else {
            return Ok(role.clone());
        };
        let set = self.trusted()?;
        let Some(d) = set.targets().and_then(|t| t.signed().delegations.as_ref()) else {
            return Ok(role.clone());
        };
        if d.role(role.as_str()).is_none() && d.role(short).is_some() {
            return RoleName::new(short.to_owned())
                .map_err(|e| anyhow!("invalid role {short:?}: {e}"));
        }
        Ok(role.clone())
    }
}

impl Repo {
    /// Opens `gun`, establishing trust in its root if this trust directory has none yet
    /// (or checking the pin against `--trust-root` and the pin file), and refreshes its
    /// metadata: expired metadata is refused.
    pub fn open(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        Self::open_in_mode(ctx, gun)
    }

    /// An updater of `gun` reading the offline bundle `path` instead of the server, over
    /// the same trusted-metadata cache and pin (so rollback is caught across bundles and
    /// server runs alike, and a bundle can never start trust over), refreshed.
    pub fn open_offline(
        ctx: &Context,
        gun: &Gun,
        path: &std::path::Path,
    ) -> anyhow::Result<Updater<BundleTransport>> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read bundle {}", path.display()))?;
        let bundle = Bundle::from_bytes(&bytes)
            .with_context(|| format!("{} is not a vouch trust bundle", path.display()))?;
        if let Some(g) = &bundle.gun {
            if g != gun.as_str() {
                bail!("{} is a bundle of {g}, not of {gun}", path.display());
            }
        }
        let transport = BundleTransport::new(bundle);
        let name = format!("bundle {}", path.display());
        let store = trust::ensure(ctx, gun, &transport, &name)?;
        let mut updater = Updater::new(store, transport).with_gun(gun.clone());
        updater
            .refresh()
            .map_err(|e| verify_error(&name, gun, updater.store(), e))?;
        Ok(updater)
    }

    /// Every file a client needs to update `gun` from root version 1 offline, named as the
    /// repository serves them: `N.root.json` for each root version and `root.json`,
    /// `timestamp.json`, and the current snapshot, targets and delegated roles.
    pub fn bundle(&self) -> anyhow::Result<Bundle> {
        let set = self.with_delegations()?;
        let cap = vouch_verifier::Limits::DEFAULT.root_max_bytes;
        let mut files = std::collections::BTreeMap::new();
        let current = set.root().version().get();
        let mut older = BTreeMap::new();
        for v in 1..current {
            let bytes = self
                .source
                .fetch(&format!("{v}.root.json"), cap)
                .map_err(|e| transport_error(&self.source_name, &self.gun, e))?;
            older.insert(v, bytes);
        }
        // The older roots are served, not yet verified: they go into the bundle only once
        // they chain, from the root pinned here, to the root trusted now.
        let pin = self
            .updater
            .store()
            .pin()
            .with_context(|| format!("cannot read the pinned root of {}", self.gun))?;
        check_root_chain(
            &self.gun,
            &older,
            set.root().bytes(),
            pin.as_ref().map(|p| p.root.as_slice()),
            now(),
        )
        .with_context(|| format!("the root files {} served", self.source_name))?;
        for (v, bytes) in older {
            files.insert(format!("{v}.root.json"), bytes);
        }
        files.insert(format!("{current}.root.json"), set.root().bytes().to_vec());
        files.insert("root.json".to_owned(), set.root().bytes().to_vec());
        let ts = set
            .timestamp()
            .ok_or_else(|| anyhow!("no trusted timestamp for {}", self.gun))?;
        files.insert("timestamp.json".to_owned(), ts.bytes().to_vec());
        let sn = set
            .snapshot()
            .ok_or_else(|| anyhow!("no trusted snapshot for {}", self.gun))?;
        let req = set.snapshot_request().map_err(|e| anyhow!(e))?;
        files.insert(req.file_name, sn.bytes().to_vec());
        let mut roles: Vec<(RoleName, Vec<u8>)> = Vec::new();
        if let Some(t) = set.targets() {
            roles.push((TopLevelRole::Targets.name(), t.bytes().to_vec()));
        }
        for (name, _, md) in set.delegated_roles() {
            roles.push((name.clone(), md.bytes().to_vec()));
        }
        for (role, bytes) in roles {
            let req = set.targets_request(&role).map_err(|e| anyhow!(e))?;
            files.insert(req.file_name, bytes);
        }
        Ok(Bundle {
            gun: Some(self.gun.to_string()),
            files,
        })
    }

    /// The updater, refreshed with expiry enforced: its answers ([`Updater::vouch`],
    /// [`Updater::lookup`]) are the ones consumers act on.
    pub fn updater(&mut self) -> &mut Updater<Source> {
        &mut self.updater
    }
}

impl EditingRepo {
    /// As [`Repo::open`], with expired metadata accepted (every other check applies), for a
    /// command that writes the repository's next state, or shows its owner its state: expired
    /// roles can then be renewed. Nothing answers from it whether an image is trusted.
    pub fn open_for_editing(ctx: &Context, gun: &Gun) -> anyhow::Result<Self> {
        Self::open_in_mode(ctx, gun)
    }

    /// As [`EditingRepo::open_for_editing`], sending updates as `submit` says.
    pub fn open_to_submit(ctx: &Context, gun: &Gun, submit: Submit) -> anyhow::Result<Self> {
        let mut repo = Self::open_in_mode(ctx, gun)?;
        repo.submit = submit;
        Ok(repo)
    }

    /// Unlocked keys for this repository's updates: a threshold of each role's keys, or,
    /// when proposing, those held here.
    pub fn signers(&self) -> Signers {
        Signers::new(self.submit)
    }

    /// Sends `files` as one update: published, or proposed ([`Submit`]). `Ok(None)` for a
    /// publish, `Ok(Some(proposal))` for a proposal.
    pub fn send(&self, files: &[(RoleName, Vec<u8>)]) -> Result<Option<Proposal>, PublishError> {
        match self.submit {
            Submit::Publish => self.remote.publish(files).map(|()| None),
            Submit::Propose => self.remote.propose(files).map(Some),
        }
    }

    /// Warns (on stderr) when roles of `set` have expired, naming them: clients refuse the
    /// repository until they are re-signed, which publishing does for the roles it changes.
    pub fn warn_expired(&self, set: &TrustedSet) {
        let expired = set.expired();
        if expired.is_empty() {
            return;
        }
        let now = now();
        let named: Vec<String> = expired
            .iter()
            .map(|(role, at)| format!("{role} ({}, {at})", expired_ago(*at, now)))
            .collect();
        output::warn(&format!(
            "expired metadata in {gun}: {}; clients refuse {gun} until it is re-signed: publishing \
             renews the roles it changes (and the server re-signs timestamp and a server-held \
             snapshot), `vouch renew {gun}` renews the others whose keys are held here",
            named.join(", "),
            gun = self.gun
        ));
    }

    /// Applies `change` to the verified metadata of `role` (`targets` or a delegated role),
    /// signs the result with a threshold of the role's keys held here (and a snapshot, when
    /// this trust directory holds the snapshot key) and publishes it; after a 409, refreshes
    /// and starts over, at most [`MAX_PUBLISH_ATTEMPTS`] times. A delegated role's targets
    /// must stay inside the paths delegated to it.
    pub fn publish_change(
        &mut self,
        ctx: &Context,
        role: &RoleName,
        change: &dyn Fn(&mut Targets) -> anyhow::Result<()>,
    ) -> anyhow::Result<Published> {
        let mut out = self.publish_changes(ctx, &[(role.clone(), change)])?;
        out.pop()
            .ok_or_else(|| anyhow!("nothing was published to {}", self.gun))
    }

    /// As [`EditingRepo::publish_change`], for several roles (distinct) changed in one update: each
    /// change is applied to its role's verified metadata and signed, and all of them (with
    /// a snapshot listing them all, when this trust directory signs snapshots) go up
    /// together. Only the roles changed are fetched when the top-level targets delegates
    /// them directly ([`Opened::with_roles`]). Returns one [`Published`] per change, in order.
    pub fn publish_changes(
        &mut self,
        ctx: &Context,
        changes: &[RoleChange<'_>],
    ) -> anyhow::Result<Vec<Published>> {
        if changes.is_empty() {
            bail!("nothing to publish to {}", self.gun);
        }
        let roles: Vec<RoleName> = changes.iter().map(|(r, _)| r.clone()).collect();
        for (i, r) in roles.iter().enumerate() {
            if roles[..i].contains(r) {
                bail!("{r} is changed twice in one update");
            }
        }
        let keystore = Keystore::new(&ctx.trust_dir);
        let mut signers: Signers = self.signers();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.refresh()?;
            }
            let set = if roles.iter().all(|r| r.top_level().is_some()) {
                self.trusted()?.clone()
            } else {
                self.with_roles(&roles)?
            };
            let root = set.root().signed().clone();
            let mut files = Vec::with_capacity(changes.len() + 1);
            let mut versions = Vec::with_capacity(changes.len());
            for (role, change) in changes {
                let (version, bytes) =
                    sign_change(&set, &self.gun, &keystore, &mut signers, role, change)?;
                versions.push(version);
                files.push((role.clone(), bytes));
            }

            if holds_any(&keystore, &root, TopLevelRole::Snapshot)? {
                let mut snapshot = set
                    .snapshot()
                    .map(|s| s.signed().clone())
                    .unwrap_or_else(|| Snapshot::new(now()));
                for ((role, bytes), version) in files.iter().zip(&versions) {
                    snapshot.meta.insert(
                        Snapshot::meta_name(role.as_str()),
                        self.submit.meta_file(*version, bytes),
                    );
                }
                snapshot.bump_version();
                snapshot.set_expires(now().add_seconds(SNAPSHOT_LIFETIME_SECS));
                let rk = root.role_keys(TopLevelRole::Snapshot);
                let snap_keys = signers.for_keys(
                    &keystore,
                    "snapshot",
                    &root.keys,
                    &rk.keyids,
                    rk.threshold,
                )?;
                let smd =
                    Metadata::signed_by(snapshot, &snap_keys).context("cannot sign snapshot")?;
                files.push((TopLevelRole::Snapshot.name(), smd.to_bytes()));
            }

            match self.send(&files) {
                Ok(proposal) => {
                    return Ok(versions
                        .into_iter()
                        .map(|version| Published {
                            version,
                            attempts: attempt,
                            proposal: proposal.clone(),
                        })
                        .collect())
                }
                Err(PublishError::Conflict { .. }) if attempt < MAX_PUBLISH_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(PublishError::Conflict { gun }) => bail!(
                    "{gun} kept changing under this update ({attempt} attempts, each refused with 409 Conflict): try again"
                ),
                Err(PublishError::Other(e)) => return Err(e),
            }
        }
    }

    /// Re-signs root unchanged but for its version and expiry (10 years from now), with a
    /// threshold of its root keys held here, and publishes it; retried after a 409.
    pub fn renew_root(&mut self, ctx: &Context) -> anyhow::Result<Published> {
        self.republish(ctx, TopLevelRole::Root, |set, keystore, signers| {
            let mut root = set.root().signed().clone();
            root.bump_version();
            root.set_expires(now().add_seconds(ROOT_LIFETIME_SECS));
            let version = root.common.version;
            let rk = root.role_keys(TopLevelRole::Root).clone();
            let keys = root.keys.clone();
            let root_keys = signers.for_keys(keystore, "root", &keys, &rk.keyids, rk.threshold)?;
            let md = Metadata::signed_by(root, &root_keys).context("cannot sign root")?;
            Ok((version, md.to_bytes()))
        })
    }

    /// Re-signs a client-held snapshot unchanged but for its version and expiry (3 years from
    /// now), with a threshold of its keys held here, and publishes it; retried after a 409.
    pub fn renew_snapshot(&mut self, ctx: &Context) -> anyhow::Result<Published> {
        let gun = self.gun.clone();
        self.republish(ctx, TopLevelRole::Snapshot, |set, keystore, signers| {
            let root = set.root().signed();
            if !holds_any(keystore, root, TopLevelRole::Snapshot)? {
                bail!("the server holds the snapshot key of {gun} and re-signs snapshot itself");
            }
            let mut snapshot = set
                .snapshot()
                .ok_or_else(|| anyhow!("no trusted snapshot for {gun}"))?
                .signed()
                .clone();
            snapshot.bump_version();
            snapshot.set_expires(now().add_seconds(SNAPSHOT_LIFETIME_SECS));
            let version = snapshot.common.version;
            let rk = root.role_keys(TopLevelRole::Snapshot);
            let keys =
                signers.for_keys(keystore, "snapshot", &root.keys, &rk.keyids, rk.threshold)?;
            let md = Metadata::signed_by(snapshot, &keys).context("cannot sign snapshot")?;
            Ok((version, md.to_bytes()))
        })
    }

    /// Publishes `role` as `sign` makes it from the trusted metadata (its new version and
    /// bytes); after a 409, refreshes and signs again, at most [`MAX_PUBLISH_ATTEMPTS`]
    /// times. Each key is unlocked once, however many attempts it takes.
    fn republish(
        &mut self,
        ctx: &Context,
        role: TopLevelRole,
        sign: impl Fn(&TrustedSet, &Keystore, &mut Signers) -> anyhow::Result<(Version, Vec<u8>)>,
    ) -> anyhow::Result<Published> {
        let keystore = Keystore::new(&ctx.trust_dir);
        let mut signers = self.signers();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.refresh()?;
            }
            let (version, bytes) = sign(self.trusted()?, &keystore, &mut signers)?;
            match self.send(&[(role.name(), bytes)]) {
                Ok(proposal) => {
                    return Ok(Published {
                        version,
                        attempts: attempt,
                        proposal,
                    })
                }
                Err(PublishError::Conflict { .. }) if attempt < MAX_PUBLISH_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(PublishError::Conflict { gun }) => {
                    bail!("{gun} kept changing under this update ({attempt} attempts): try again")
                }
                Err(PublishError::Other(e)) => return Err(e),
            }
        }
    }
}

/// True when every role of `roles` is a top-level role or one the top-level targets of `set`
/// delegates to directly (so nothing below it needs loading to reach them).
pub fn delegated_directly(set: &TrustedSet, roles: &[RoleName]) -> bool {
    set.targets()
        .and_then(|t| t.signed().delegations.as_ref())
        .is_some_and(|d| {
            roles
                .iter()
                .all(|r| r.top_level().is_some() || d.role(r.as_str()).is_some())
        })
}

/// Applies `change` to the metadata of `role` in `set` (version 1 of a delegated role not
/// published yet), checks that a delegated role's targets stay inside the paths delegated
/// to it, bumps the version, renews the expiry and signs it with a threshold of the role's
/// keys held here. Returns the new version and the signed bytes.
fn sign_change(
    set: &TrustedSet,
    gun: &Gun,
    keystore: &Keystore,
    signers: &mut Signers,
    role: &RoleName,
    change: &dyn Fn(&mut Targets) -> anyhow::Result<()>,
) -> anyhow::Result<(Version, Vec<u8>)> {
    let root = set.root().signed();
    let mut is_new = false;
    let (mut targets, keyids, threshold, delegated) = match role.top_level() {
        Some(TopLevelRole::Targets) => {
            let current = set
                .targets()
                .ok_or_else(|| anyhow!("no trusted targets metadata for {gun}"))?
                .signed()
                .clone();
            let rk = root.role_keys(TopLevelRole::Targets);
            (current, rk.keyids.clone(), rk.threshold, None)
        }
        Some(other) => bail!("{other} metadata is not changed this way"),
        None => {
            let dr = delegation_of(set, role).ok_or_else(|| {
                anyhow!("{gun} does not delegate {role}: add it with `vouch delegation add`")
            })?;
            let current = match set.targets_role(role.as_str()) {
                Some(t) => t.signed().clone(),
                None if listed(set, role) => {
                    bail!("{role} of {gun} is published but could not be loaded")
                }
                None => {
                    // The first metadata of this role: version 1.
                    is_new = true;
                    Targets::new(now())
                }
            };
            (current, dr.keyids.clone(), dr.threshold, Some(dr))
        }
    };
    change(&mut targets)?;
    if let Some(dr) = &delegated {
        for name in targets.targets.keys() {
            if !dr.is_delegated_path(name.as_str()) {
                let hint = match bin_for(set, name.as_str()) {
                    Some(bin) if bin != *role => format!("; it belongs in {bin}"),
                    _ => String::new(),
                };
                bail!(
                    "{name} is outside the targets delegated to {role} ({}){hint}: nothing was published",
                    describe_scope(dr)
                );
            }
        }
    }
    if !is_new {
        targets.bump_version();
    }
    targets.set_expires(now().add_seconds(TARGETS_LIFETIME_SECS));
    let version = targets.common.version;
    let keys = match &delegated {
        None => root.keys.clone(),
        Some(_) => delegation_keys(set, role),
    };
    let role_keys = signers.for_keys(keystore, role.as_str(), &keys, &keyids, threshold)?;
    let md =
        Metadata::signed_by(targets, &role_keys).with_context(|| format!("cannot sign {role}"))?;
    Ok((version, md.to_bytes()))
}

/// True when `dr` is a hashed bin: a delegation named `bins-…` by hash prefixes.
pub fn is_bin(dr: &DelegatedRole) -> bool {
    dr.name.as_str().starts_with(BIN_PREFIX) && matches!(dr.scope, PathScope::HashPrefixes(_))
}

/// The hashed bins the top-level targets of `set` delegates to, in its order.
pub fn bins(set: &TrustedSet) -> Vec<&DelegatedRole> {
    set.targets()
        .and_then(|t| t.signed().delegations.as_ref())
        .map(|d| d.roles.iter().filter(|r| is_bin(r)).collect())
        .unwrap_or_default()
}

/// The first hashed bin of `set` whose prefixes cover `target`, if the repository has bins.
pub fn bin_for(set: &TrustedSet, target: &str) -> Option<RoleName> {
    bins(set)
        .into_iter()
        .find(|r| r.is_delegated_path(target))
        .map(|r| r.name.clone())
}

/// The name of hashed bin number `i` of `count` (16, 256 or 4096): `bins-` and `i` in as
/// many lowercase hex digits as `count` needs.
pub fn bin_name(i: usize, count: usize) -> String {
    let width = bin_prefix_len(count);
    format!("{BIN_PREFIX}{i:0width$x}")
}

/// How many hex digits the prefixes of `count` bins have (1 for 16, 2 for 256, 3 for 4096).
pub fn bin_prefix_len(count: usize) -> usize {
    let mut width = 0;
    let mut n = 1usize;
    while n < count {
        n *= 16;
        width += 1;
    }
    width
}

/// True when the trusted snapshot lists `role`'s metadata (it has been published).
pub fn listed(set: &TrustedSet, role: &RoleName) -> bool {
    set.snapshot().is_some_and(|s| {
        s.signed()
            .meta
            .contains_key(&Snapshot::meta_name(role.as_str()))
    })
}

/// The delegation of `role` by `targets` or a loaded delegated role.
pub fn delegation_of(set: &TrustedSet, role: &RoleName) -> Option<DelegatedRole> {
    let parents = set
        .targets()
        .into_iter()
        .chain(set.delegated_roles().map(|(_, _, t)| t));
    for p in parents {
        if let Some(dr) = p
            .signed()
            .delegations
            .as_ref()
            .and_then(|d| d.role(role.as_str()))
        {
            return Some(dr.clone());
        }
    }
    None
}

/// The keys of the delegation that delegates `role` (empty when none does).
pub fn delegation_keys(set: &TrustedSet, role: &RoleName) -> BTreeMap<KeyId, Key> {
    let parents = set
        .targets()
        .into_iter()
        .chain(set.delegated_roles().map(|(_, _, t)| t));
    for p in parents {
        if let Some(d) = p.signed().delegations.as_ref() {
            if d.role(role.as_str()).is_some() {
                return d.keys.clone();
            }
        }
    }
    BTreeMap::new()
}

/// The paths or hash prefixes of a delegation, for messages.
pub fn describe_scope(dr: &DelegatedRole) -> String {
    match &dr.scope {
        PathScope::Paths(p) => format!("paths {}", p.join(", ")),
        PathScope::HashPrefixes(p) => format!("path hash prefixes {}", p.join(", ")),
        PathScope::Nothing => "no paths".to_owned(),
    }
}

/// `expired 3 days ago` (rounded to the nearest day; `less than a day ago` under half a day).
pub fn expired_ago(at: Timestamp, now: Timestamp) -> String {
    let days = (now.unix() - at.unix() + 43_200).div_euclid(86_400);
    match days {
        d if d <= 0 => "expired less than a day ago".to_owned(),
        1 => "expired 1 day ago".to_owned(),
        d => format!("expired {d} days ago"),
    }
}

/// The check of the TUF workflow that `e` (from opening or refreshing a repository) failed,
/// if it failed one (rather than, say, a fetch): the trust data then says "not trusted".
pub fn failed_check(e: &anyhow::Error) -> Option<&UpdateError> {
    e.chain()
        .find_map(|c| match c.downcast_ref::<VerifyError>() {
            Some(VerifyError::Update(u)) => Some(u),
            _ => c.downcast_ref::<UpdateError>(),
        })
}

/// Why `gun` is not trusted, when opening it failed because its trust data failed a check
/// or disagrees with this machine's pin ([`trust::PinMismatch`]); `None` when it failed for
/// another reason (a fetch, a missing trust root), which is an error rather than a verdict.
pub fn not_trusted_reason(gun: &Gun, e: &anyhow::Error) -> Option<String> {
    if let Some(m) = e
        .chain()
        .find_map(|c| c.downcast_ref::<trust::PinMismatch>())
    {
        return Some(m.to_string());
    }
    if let Some(v) = e
        .chain()
        .find_map(|c| c.downcast_ref::<VerificationFailed>())
    {
        return Some(v.to_string());
    }
    failed_check(e).map(|check| format!("the trust data of {gun} failed verification: {check}"))
}

/// Turns a verifier error about `gun` on `server` into a message that names what to do.
pub fn verify_error(
    server: &str,
    gun: &Gun,
    store: &MetadataStore,
    e: VerifyError,
) -> anyhow::Error {
    match e {
        VerifyError::Transport(t) => transport_error(server, gun, t)
            .context(format!("cannot update the trust data of {gun}")),
        VerifyError::Update(cause) => anyhow::Error::new(VerificationFailed {
            gun: gun.to_string(),
            // Signatures that do not verify are how a source with another root (a
            // re-created repository, another server's) shows: say where trust is pinned.
            hint: matches!(cause, UpdateError::ThresholdNotMet { .. })
                .then(|| trust::pin_hint(store, gun))
                .flatten(),
            cause,
        }),
        other => anyhow!(other).context(format!("trust data of {gun} failed verification")),
    }
}

/// Trust data that failed a check of the TUF workflow, with where this machine's trust in
/// the repository is pinned (a failure against the pin usually means the repository was
/// re-created, or the source is not the repository the pin trusts).
#[derive(Debug, thiserror::Error)]
#[error("trust data of {gun} failed verification: {cause}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
pub struct VerificationFailed {
    /// The repository.
    pub gun: String,
    /// The check that failed.
    #[source]
    pub cause: UpdateError,
    /// Where trust is pinned, and how to change it.
    pub hint: Option<String>,
}

/// A random delay that grows with the attempt, so that racing signers spread out.
fn backoff(attempt: u32) -> Duration {
    let mut b = [0u8; 2];
    let jitter = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b) % 100),
        Err(_) => 50,
    };
    Duration::from_millis(20 * u64::from(attempt.min(6)) + jitter)
}

/// Why the older root files of a repository (as a source served them) were refused.
#[derive(Debug, thiserror::Error)]
pub enum RootChainError {
    /// A root version is not signed as the workflow requires by the one before it (and by
    /// itself), or is not the next version.
    #[error("{version}.root.json of {gun} does not chain to the trusted root: {cause}")]
    Broken {
        /// The repository.
        gun: String,
        /// The root version that does not chain.
        version: u64,
        /// The check it failed.
        #[source]
        cause: Box<UpdateError>,
    },
    /// The walk ended at a root other than the one trusted.
    #[error("the root files of {gun} end at a root that is not the trusted version {version}")]
    NotTrusted {
        /// The repository.
        gun: String,
        /// The trusted root version.
        version: u64,
    },
    /// The root of the version pinned on this machine is not the pinned root.
    #[error("{version}.root.json of {gun} is not the root pinned for it on this machine")]
    NotPinned {
        /// The repository.
        gun: String,
        /// The pinned root's version.
        version: u64,
    },
}

/// Checks that `older` (root versions `1..current` as a source served them) are the history
/// of `trusted` (the root trusted now, version `current`): starting from `1.root.json`
/// (expiry ignored: old roots have expired), each version is accepted by the root
/// workflow's rotation checks ([`TrustedSet::update_root`]) after the one before, and the
/// walk ends byte-identical to `trusted`. When `pin` (the root this machine's trust in the
/// repository started from) is given, the file of its version must be it.
pub fn check_root_chain(
    gun: &Gun,
    older: &BTreeMap<u64, Vec<u8>>,
    trusted: &[u8],
    pin: Option<&[u8]>,
    now: Timestamp,
) -> Result<(), RootChainError> {
    let broken = |version: u64, cause: UpdateError| RootChainError::Broken {
        gun: gun.to_string(),
        version,
        cause: Box::new(cause),
    };
    let current = older.len() as u64 + 1;
    let file = |v: u64| -> Option<&[u8]> {
        if v == current {
            Some(trusted)
        } else {
            older.get(&v).map(Vec::as_slice)
        }
    };
    if let Some(pin) = pin {
        let version = Metadata::<Root>::from_bytes(pin)
            .map(|m| m.version().get())
            .unwrap_or(0);
        if file(version) != Some(pin) {
            return Err(RootChainError::NotPinned {
                gun: gun.to_string(),
                version,
            });
        }
    }
    let limits = vouch_verifier::Limits {
        max_root_rotations: u32::try_from(current)
            .unwrap_or(u32::MAX)
            .max(vouch_verifier::Limits::DEFAULT.max_root_rotations),
        ..vouch_verifier::Limits::DEFAULT
    };
    let first = file(1).ok_or_else(|| RootChainError::NotTrusted {
        gun: gun.to_string(),
        version: current,
    })?;
    let mut set =
        TrustedSet::with_expiry(first, now, limits, vouch_verifier::Expiry::IgnoreForEditing)
            .map_err(|e| broken(1, e))?;
    for v in 2..=current {
        let bytes = file(v).ok_or_else(|| RootChainError::NotTrusted {
            gun: gun.to_string(),
            version: current,
        })?;
        set.update_root(bytes).map_err(|e| broken(v, e))?;
    }
    if set.root().bytes() != trusted {
        return Err(RootChainError::NotTrusted {
            gun: gun.to_string(),
            version: current,
        });
    }
    Ok(())
}

/// An error from fetching `gun`'s trust data from `server`, with the hint that matters (a
/// refusal says what is wrong with the token).
pub fn transport_error(server: &str, gun: &Gun, e: TransportError) -> anyhow::Error {
    match e {
        TransportError::Network { message, .. } if message.contains("cannot reach") => {
            anyhow!(message)
        }
        TransportError::Unauthorized {
            status, refusal, ..
        } => anyhow!(crate::remote::transport_refusal(refusal, status, gun))
            .context(format!("fetching from {server}")),
        other => anyhow!(other).context(format!("fetching from {server}")),
    }
}

/// True when this trust directory holds a key `root` assigns to `role`.
pub fn holds_any(keystore: &Keystore, root: &Root, role: TopLevelRole) -> anyhow::Result<bool> {
    for id in &root.role_keys(role).keyids {
        if keystore.get(id)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True unless `entry` records that it was made for a repository other than `gun`.
pub fn entry_is_for(entry: &crate::keystore::Entry, gun: &str) -> bool {
    !matches!(entry.repository.as_deref(), Some(r) if r != gun)
}

/// Private keys unlocked during one command, by key id (each passphrase asked once).
#[derive(Default)]
pub struct Signers {
    keys: BTreeMap<KeyId, PrivateKey>,
    submit: Submit,
}

impl Signers {
    /// No keys unlocked yet, for updates sent as `submit` says.
    pub fn new(submit: Submit) -> Self {
        Signers {
            keys: BTreeMap::new(),
            submit,
        }
    }

    /// Unlocks (once) every key of `keyids` held here for the repository `gun`, for signing
    /// `role`; the ids held, in order, each with its key. A key recorded as made for another
    /// repository is skipped.
    pub fn held(
        &mut self,
        keystore: &Keystore,
        gun: &str,
        role: &str,
        keyids: &[KeyId],
    ) -> anyhow::Result<Vec<(KeyId, &dyn Signer)>> {
        let mut chosen = Vec::new();
        for id in keyids {
            if chosen.contains(id) {
                continue;
            }
            if !self.keys.contains_key(id) {
                let Some(entry) = keystore.get(id)? else {
                    continue;
                };
                if !entry_is_for(&entry, gun) {
                    continue;
                }
                let (pass, source) = passphrase::unlock(&entry.role, id.as_str())?;
                let key = keystore.unlock(&entry, &pass).with_context(|| {
                    format!("cannot unlock the {role} key {id} (passphrase {source})")
                })?;
                self.keys.insert(id.clone(), key);
            }
            chosen.push(id.clone());
        }
        Ok(chosen
            .into_iter()
            .filter_map(|id| {
                let k = self.keys.get(&id)? as &dyn Signer;
                Some((id, k))
            })
            .collect())
    }

    /// Unlocks (once) and returns `threshold` of the keys `keyids` of `role` held here,
    /// checking that each stored key is the one `keys` lists under its id. When proposing,
    /// returns those held here (at most `threshold`), and fails before unlocking anything
    /// when none is.
    pub fn for_keys(
        &mut self,
        keystore: &Keystore,
        role: &str,
        keys: &BTreeMap<KeyId, Key>,
        keyids: &[KeyId],
        threshold: Threshold,
    ) -> anyhow::Result<Vec<&dyn Signer>> {
        let need = threshold.get() as usize;
        if self.submit == Submit::Propose {
            let mut held = 0usize;
            for id in keyids.iter().filter(|id| keys.contains_key(*id)) {
                if self.keys.contains_key(id) || keystore.get(id)?.is_some() {
                    held += 1;
                }
            }
            if held == 0 {
                bail!(
                    "cannot propose a change of {role}: {} holds none of its keys ({}); nothing was proposed: run this in the trust directory of one of its key holders",
                    keystore.dir().display(),
                    keyids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
                );
            }
        }
        let mut chosen = Vec::new();
        for id in keyids {
            if chosen.len() == need {
                break;
            }
            if !keys.contains_key(id) {
                continue;
            }
            if self.keys.contains_key(id) {
                chosen.push(id.clone());
                continue;
            }
            let Some(entry) = keystore.get(id)? else {
                continue;
            };
            let (pass, source) = passphrase::unlock(&entry.role, id.as_str())?;
            let key = keystore.unlock(&entry, &pass).with_context(|| {
                format!("cannot unlock the {role} key {id} (passphrase {source})")
            })?;
            self.keys.insert(id.clone(), key);
            chosen.push(id.clone());
        }
        if chosen.len() < need && self.submit == Submit::Publish {
            bail!(
                "signing {role} needs {need} of its keys ({}), and {} holds {}: import the key with `vouch key import`, use the trust directory that holds it, or pass --propose to have the other key holders approve it (`vouch approve`)",
                keyids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", "),
                keystore.dir().display(),
                chosen.len()
            );
        }
        Ok(chosen
            .iter()
            .filter_map(|id| self.keys.get(id).map(|k| k as &dyn Signer))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Root version `version` with `keys` for every role, signed by `signers`.
    fn root_file(version: u64, keys: &[&PrivateKey], signers: &[&PrivateKey]) -> Vec<u8> {
        let mut root = Root::new(Timestamp::from_unix(1_000));
        root.common.version = Version::new(version).unwrap();
        for role in TopLevelRole::ALL {
            for k in keys {
                root.add_key(role, Key::from_verifying_key(&k.verifying_key()));
            }
        }
        let signers: Vec<&dyn Signer> = signers.iter().map(|k| *k as &dyn Signer).collect();
        Metadata::signed_by(root, &signers).unwrap().to_bytes()
    }

    /// Older roots a source serves go into a bundle only when they chain to the trusted
    /// root and start at the pinned one: a substituted `1.root.json` (another key, as a
    /// hostile registry copy would serve) or a broken link is refused, naming the version.
    #[test]
    fn older_roots_must_chain_to_the_trusted_root() {
        use vouch_tuf::crypto::Algorithm;
        let gun = Gun::new("example.com/org/app").unwrap();
        let now = Timestamp::from_unix(10_000_000);
        let [a, b, c, evil] =
            std::array::from_fn(|_| PrivateKey::generate(Algorithm::Ed25519).unwrap());
        let v1 = root_file(1, &[&a], &[&a]);
        let v2 = root_file(2, &[&b], &[&a, &b]);
        let v3 = root_file(3, &[&c], &[&b, &c]);
        let older = BTreeMap::from([(1, v1.clone()), (2, v2.clone())]);
        // Expired long ago, and yet they chain.
        check_root_chain(&gun, &older, &v3, Some(&v1), now).unwrap();
        check_root_chain(&gun, &older, &v3, None, now).unwrap();
        check_root_chain(&gun, &BTreeMap::new(), &v1, Some(&v1), now).unwrap();

        // Another first root, self-signed by a key of the attacker's.
        let forged = root_file(1, &[&evil], &[&evil]);
        let tampered = BTreeMap::from([(1, forged.clone()), (2, v2.clone())]);
        let e = check_root_chain(&gun, &tampered, &v3, None, now).unwrap_err();
        assert!(
            matches!(e, RootChainError::Broken { version: 2, .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("2.root.json of example.com/org/app does not chain"),
            "{e}"
        );
        // A first root other than the pinned one is refused before any walk.
        let e = check_root_chain(&gun, &tampered, &v3, Some(&v1), now).unwrap_err();
        assert!(
            matches!(e, RootChainError::NotPinned { version: 1, .. }),
            "{e}"
        );
        // A version in between that is not the one the trusted root was signed after.
        let other_v2 = root_file(2, &[&evil], &[&a, &evil]);
        let e = check_root_chain(
            &gun,
            &BTreeMap::from([(1, v1.clone()), (2, other_v2)]),
            &v3,
            Some(&v1),
            now,
        )
        .unwrap_err();
        assert!(
            matches!(e, RootChainError::Broken { version: 3, .. }),
            "{e}"
        );
        // Versions out of place.
        let e = check_root_chain(
            &gun,
            &BTreeMap::from([(1, v1.clone()), (2, v1.clone())]),
            &v3,
            None,
            now,
        )
        .unwrap_err();
        assert!(
            matches!(e, RootChainError::Broken { version: 2, .. }),
            "{e}"
        );
        // A pin of a later version must be that version's file.
        check_root_chain(&gun, &older, &v3, Some(&v2), now).unwrap();
        let e = check_root_chain(&gun, &older, &v3, Some(&forged), now).unwrap_err();
        assert!(matches!(e, RootChainError::NotPinned { .. }), "{e}");
    }

    #[test]
    fn a_key_made_for_another_repository_is_not_used() {
        use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer as _};
        let tmp = tempfile::tempdir().unwrap();
        let keystore = Keystore::new(tmp.path());
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let public = Key::from_verifying_key(&key.verifying_key());
        let entry = keystore
            .save_pem_for(
                &public,
                "targets",
                "ed25519",
                Some("example.com/org/other"),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                false,
            )
            .unwrap();
        assert!(!entry_is_for(&entry, "example.com/org/app"));
        assert!(entry_is_for(&entry, "example.com/org/other"));
        let mut signers = Signers::new(Submit::Propose);
        // Skipped before anything is unlocked (no passphrase is asked).
        let held = signers
            .held(
                &keystore,
                "example.com/org/app",
                "targets",
                &[public.key_id()],
            )
            .unwrap();
        assert!(held.is_empty());
    }

    #[test]
    fn bin_names_have_as_many_hex_digits_as_the_count_needs() {
        assert_eq!(bin_prefix_len(16), 1);
        assert_eq!(bin_prefix_len(256), 2);
        assert_eq!(bin_prefix_len(4096), 3);
        assert_eq!(bin_name(0, 16), "bins-0");
        assert_eq!(bin_name(15, 16), "bins-f");
        assert_eq!(bin_name(10, 256), "bins-0a");
        assert_eq!(bin_name(4095, 4096), "bins-fff");
    }

    #[test]
    fn a_bin_is_a_bins_role_by_hash_prefix() {
        let name = RoleName::new("bins-3".to_owned()).unwrap();
        let mut dr = DelegatedRole::with_paths(name, Vec::new(), vec!["*".into()]);
        assert!(
            !is_bin(&dr),
            "a bins- name with paths is an ordinary delegation"
        );
        dr.scope = PathScope::HashPrefixes(vec!["3".into()]);
        assert!(is_bin(&dr));
        // sha256("v1") = "3bfc2695...".
        assert!(dr.is_delegated_path("v1"));
        dr.name = RoleName::new("targets/releases".to_owned()).unwrap();
        assert!(!is_bin(&dr));
    }
}
