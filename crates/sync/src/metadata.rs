//! App and book metadata (name, icon, bundle id, platforms, version, minimum OS) for assets that
//! have none or whose copy is old. With a developer key configured, Apple's metadata API for
//! organizations (§18.2) is asked first, storefront after storefront; the content metadata lookup
//! (§18.1) answers for the rest (books, and everything when the API fails). The token goes along
//! as the `itvt` cookie to both, without which Apple does not answer for custom (B2B) apps or apps
//! no longer sold.

use allot_apple_client::catalog::storefronts_for;
use allot_apple_client::Bearer;
use allot_apple_wire::catalog::CatalogResource;
use allot_apple_wire::metadata::{Artwork, LookupItem};
use allot_domain::Program;
use allot_store::{MetadataRow, TokenRow};

use crate::{now_ms, SyncEngine};

/// Ids per lookup request.
const LOOKUP_BATCH: usize = 100;

impl SyncEngine {
    /// Refreshes what is due; a metadata API failure becomes a warning and the lookup answers.
    pub(crate) async fn refresh_metadata(
        &self,
        t: &TokenRow,
        warnings: &mut Vec<String>,
    ) -> Result<usize, String> {
        let store = &self.inner.store;
        let older_than = now_ms() - self.inner.config.metadata_max_age.as_millis() as i64;
        let due = store
            .metadata_due(t.id, older_than)
            .await
            .map_err(|e| e.to_string())?;
        if due.is_empty() {
            return Ok(0);
        }
        let bearer = self.bearer(t).map_err(|e| e.to_string())?;
        let mut stored = 0;
        // The metadata API knows apps; books go to the lookup straight away.
        let apps: Vec<String> = due
            .iter()
            .filter(|(_, kind)| kind != "Book")
            .map(|(id, _)| id.clone())
            .collect();
        let mut due: Vec<String> = due.into_iter().map(|(id, _)| id).collect();
        if self.inner.config.catalog.is_some() && !apps.is_empty() {
            match self.refresh_from_catalog(t, &bearer, &apps).await {
                Ok(found) => {
                    due.retain(|id| !found.contains(id));
                    stored += found.len();
                }
                Err(e) => warnings.push(format!(
                    "{e}; names and icons came from the content metadata lookup instead"
                )),
            }
        }
        stored += self.refresh_from_lookup(t, &bearer, &due).await?;
        Ok(stored)
    }

    /// The ids the metadata API knew, stored.
    async fn refresh_from_catalog(
        &self,
        t: &TokenRow,
        bearer: &Bearer,
        ids: &[String],
    ) -> Result<Vec<String>, String> {
        let config = &self.inner.config;
        let Some(api) = &config.catalog else {
            return Ok(Vec::new());
        };
        let storefronts = storefronts_for(&t.country, &config.catalog_storefronts);
        let found = api
            .apps_anywhere(
                t.program == Program::Education,
                bearer,
                &storefronts,
                ids,
                &config.metadata_language,
            )
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<MetadataRow> = found
            .into_iter()
            .filter(|(_, r)| ids.contains(&r.id))
            .map(|(storefront, r)| catalog_row(storefront, r))
            .collect();
        self.inner
            .store
            .upsert_metadata(&rows, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|r| r.adam_id).collect())
    }

    async fn refresh_from_lookup(
        &self,
        t: &TokenRow,
        bearer: &Bearer,
        ids: &[String],
    ) -> Result<usize, String> {
        let platform = match t.program {
            Program::Education => "volumestore",
            Program::Business => "enterprisestore",
        };
        let country = if t.country.is_empty() {
            "US"
        } else {
            t.country.as_str()
        };
        let language = &self.inner.config.metadata_language;
        let mut stored = 0;
        for chunk in ids.chunks(LOOKUP_BATCH) {
            let res = self
                .inner
                .apple
                .lookup(chunk, platform, country, language, Some(bearer))
                .await
                .map_err(|e| e.to_string())?;
            let rows: Vec<MetadataRow> = res
                .results
                .into_iter()
                .map(|(id, m)| lookup_row(id, m))
                .collect();
            stored += rows.len();
            self.inner
                .store
                .upsert_metadata(&rows, now_ms())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(stored)
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn lookup_row(id: String, m: LookupItem) -> MetadataRow {
    let version = m.offers.first().map(|o| &o.version);
    MetadataRow {
        adam_id: id,
        name: m.name.trim().to_owned(),
        bundle_id: m.bundle_id,
        icon_url: m.artwork.as_ref().and_then(|a| a.icon_url(512)),
        platforms: m.device_families,
        version: version.and_then(|v| non_empty(&v.display)),
        kind: m.kind,
        artist: m.artist_name,
        genre: m.genre_names.into_iter().next(),
        device_licensing: m.is_vpp_device_based_licensing_enabled,
        external_version_id: version.map(|v| v.external_id).filter(|v| *v > 0),
        minimum_os_version: m.minimum_os_version.as_deref().and_then(non_empty),
        custom_app: m.is_b2b_custom_app,
        source: "lookup".into(),
        storefront: None,
        fetched_at: 0,
    }
}

/// The metadata API's answer: the `ios` platform's facts for iOS and universal apps, `osx`'s for
/// Mac apps; the latest version's display string trimmed (Apple has sent a leading space).
fn catalog_row(storefront: String, r: CatalogResource) -> MetadataRow {
    let a = r.attributes;
    let (platform, p) = match a.main_platform() {
        Some((k, p)) => (k.to_owned(), p.clone()),
        None => (String::new(), Default::default()),
    };
    MetadataRow {
        adam_id: r.id,
        name: a.name.trim().to_owned(),
        bundle_id: p.bundle_id,
        icon_url: p.artwork.and_then(|i| Artwork::Template(i).icon_url(512)),
        platforms: a.device_families,
        version: p
            .latest_version_info
            .and_then(|v| non_empty(&v.version_display)),
        kind: Some(
            if platform == "osx" {
                "macSoftware"
            } else {
                "iosSoftware"
            }
            .into(),
        ),
        artist: a.artist_name,
        genre: a.genre_names.into_iter().next(),
        device_licensing: a.is_vpp_device_based_licensing_enabled,
        external_version_id: Some(p.external_version_id).filter(|v| *v > 0),
        minimum_os_version: p.minimum_os_version.as_deref().and_then(non_empty),
        custom_app: a.is_b2b_custom_app,
        source: "metadata-api".into(),
        storefront: Some(storefront),
        fetched_at: 0,
    }
}
