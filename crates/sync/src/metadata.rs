//! App and book metadata (name, icon, bundle id, platforms, version) from Apple's content
//! metadata lookup, for assets that have none or whose copy is old. The token goes along as the
//! `itvt` cookie, without which Apple does not answer for custom (B2B) apps or apps no longer sold.

use allot_domain::Program;
use allot_store::{MetadataRow, TokenRow};

use crate::{now_ms, SyncEngine};

/// Ids per lookup request.
const LOOKUP_BATCH: usize = 100;

impl SyncEngine {
    pub(crate) async fn refresh_metadata(&self, t: &TokenRow) -> Result<usize, String> {
        let store = &self.inner.store;
        let older_than = now_ms() - self.inner.config.metadata_max_age.as_millis() as i64;
        let due = store
            .metadata_due(t.id, older_than)
            .await
            .map_err(|e| e.to_string())?;
        let platform = match t.program {
            Program::Education => "volumestore",
            Program::Business => "enterprisestore",
        };
        let country = if t.country.is_empty() {
            "US"
        } else {
            t.country.as_str()
        };
        let bearer = self.bearer(t).map_err(|e| e.to_string())?;
        let language = &self.inner.config.metadata_language;
        let mut stored = 0;
        for ids in due.chunks(LOOKUP_BATCH) {
            let res = self
                .inner
                .apple
                .lookup(ids, platform, country, language, Some(&bearer))
                .await
                .map_err(|e| e.to_string())?;
            let rows: Vec<MetadataRow> = res
                .results
                .into_iter()
                .map(|(id, m)| MetadataRow {
                    adam_id: id,
                    name: m.name.trim().to_owned(),
                    bundle_id: m.bundle_id,
                    icon_url: m.artwork.as_ref().and_then(|a| a.icon_url(512)),
                    platforms: m.device_families,
                    version: m
                        .offers
                        .first()
                        .map(|o| o.version.display.trim().to_owned()),
                    kind: m.kind,
                    artist: m.artist_name,
                    genre: m.genre_names.into_iter().next(),
                    device_licensing: m.is_vpp_device_based_licensing_enabled,
                    external_version_id: m
                        .offers
                        .first()
                        .map(|o| o.version.external_id)
                        .filter(|v| *v > 0),
                })
                .collect();
            stored += rows.len();
            store
                .upsert_metadata(&rows, now_ms())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(stored)
    }
}
