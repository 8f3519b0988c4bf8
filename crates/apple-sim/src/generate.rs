//! Deterministic generator of large organizations: the same spec and seed always give the same
//! locations, assets, users and assignments.

use allot_apple_wire::{user_status, PRODUCT_APP, PRODUCT_BOOK};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::catalog::AppMeta;
use crate::model::{AssetRecord, Holder, Location, Program, UserRecord};
use crate::world::World;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GenerateSpec {
    pub seed: u64,
    /// Organization name (default `Generated Organization <seed>`).
    pub organization: Option<String>,
    pub program: Program,
    /// Locations to make; every number below is per location.
    pub locations: usize,
    pub assets: usize,
    /// Share of assets that are books, in percent.
    pub books_percent: u32,
    pub users: usize,
    pub serial_numbers: usize,
    pub assignments: usize,
    /// Spare licenses on top of the assigned ones, in percent.
    pub free_percent: u32,
    pub token_expires_in_days: i64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            organization: None,
            program: Program::Business,
            locations: 1,
            assets: 20,
            books_percent: 10,
            users: 100,
            serial_numbers: 100,
            assignments: 500,
            free_percent: 10,
            token_expires_in_days: 365,
        }
    }
}

impl GenerateSpec {
    /// Parses `key=value,key=value` (the `--generate` flag), e.g.
    /// `seed=7,locations=1,assets=500,serialNumbers=200000,users=50000,assignments=1000000`.
    pub fn parse_flag(s: &str) -> Result<Self, String> {
        let mut map = serde_json::Map::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--generate: {part:?} is not key=value"))?;
            let value = match v.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(v),
            };
            map.insert(k.to_owned(), value);
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| format!("--generate: {e}"))
    }
}

const ADJECTIVES: &[&str] = &[
    "Bright", "Quantum", "Swift", "Clear", "Blue", "Silver", "Open", "Smart", "Rapid", "Calm",
    "Bold", "Nimble", "Vivid", "Solid", "Lucid", "Prime", "Polar", "Urban", "Noble", "Agile",
];
const NOUNS: &[&str] = &[
    "Notes", "Math", "Atlas", "Canvas", "Ledger", "Studio", "Reader", "Planner", "Lab", "Forms",
    "Scanner", "Chat", "Maps", "Tutor", "Board", "Sketch", "Docs", "Music", "Code", "Field",
];

/// Adds the locations a spec describes to the world.
pub fn generate(world: &mut World, spec: &GenerateSpec, now: DateTime<Utc>) -> Result<(), String> {
    let at = format!("generate (seed {})", spec.seed);
    if spec.assets == 0 && spec.assignments > 0 {
        return Err(format!("{at}: assignments need at least one asset"));
    }
    let per_asset = spec.assignments.div_ceil(spec.assets.max(1));
    if per_asset > spec.users + spec.serial_numbers {
        return Err(format!(
            "{at}: {} assignments over {} assets need {per_asset} holders per asset, but there are only {} users and serial numbers",
            spec.assignments,
            spec.assets,
            spec.users + spec.serial_numbers
        ));
    }
    let org = spec
        .organization
        .clone()
        .unwrap_or_else(|| format!("Generated Organization {}", spec.seed));
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    for l in 0..spec.locations {
        let n = world.locations.len() as u64;
        let uid = crate::scenario::default_uid(n + spec.seed.wrapping_mul(1_000_003) % 1_000_000);
        let uid = if world.by_uid.contains_key(&uid) {
            crate::scenario::default_uid(n)
        } else {
            uid
        };
        let name = if spec.locations == 1 {
            format!("{org} HQ")
        } else {
            format!("{org} Site {:04}", l + 1)
        };
        let domain = format!("appleid.gen{}.example", spec.seed);
        let mut loc = Location::new(uid, name, org.clone(), spec.program, "US".into(), domain);
        fill(world, &mut loc, spec, &mut rng)?;
        let token = crate::scenario::make_token(
            &loc.uid,
            0,
            &org,
            now + Duration::days(spec.token_expires_in_days),
        );
        world.add_location(loc, token);
    }
    Ok(())
}

fn fill(
    world: &mut World,
    loc: &mut Location,
    spec: &GenerateSpec,
    rng: &mut ChaCha8Rng,
) -> Result<(), String> {
    // Assets.
    for i in 0..spec.assets {
        let is_book = rng.random_range(0..100) < spec.books_percent;
        let adam_id = (1_000_000_000u64 + rng.random_range(0..8_000_000_000u64)).to_string();
        let platforms: Vec<String> = if is_book {
            vec!["iOS".into(), "macOS".into()]
        } else {
            match rng.random_range(0..10) {
                0 => vec!["macOS".into()],
                1 | 2 => vec!["iOS".into(), "macOS".into()],
                _ => vec!["iOS".into()],
            }
        };
        let device = !is_book && rng.random_range(0..10) > 0;
        let name = if is_book {
            format!(
                "The {} of {}",
                NOUNS[rng.random_range(0..NOUNS.len())],
                NOUNS[i % NOUNS.len()]
            )
        } else {
            format!(
                "{} {}",
                ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                NOUNS[i % NOUNS.len()]
            )
        };
        if loc.asset_idx(&adam_id, "STDQ").is_some() {
            continue;
        }
        loc.add_asset(AssetRecord {
            adam_id: adam_id.clone(),
            pricing_param: "STDQ".into(),
            product_type: if is_book { PRODUCT_BOOK } else { PRODUCT_APP }.into(),
            total: 0,
            assigned: 0,
            retired: 0,
            device_assignable: device,
            revocable: !is_book,
            unlimited: false,
            platforms: platforms.clone(),
        });
        // One app in twenty is a custom (B2B) app, named by the lookup only with the cookie.
        world
            .catalog
            .entry(adam_id.clone())
            .or_insert_with(|| AppMeta::derived(&adam_id, Some(&name), is_book, &platforms, device))
            .b2b_custom |= !is_book && i % 20 == 19;
    }
    // Users: nine in ten have joined (Associated), the rest are invited (Registered).
    for u in 0..spec.users {
        let cuid = format!("u-{}-{u:07}", spec.seed);
        let associated = rng.random_range(0..10) > 0;
        loc.users.push(UserRecord {
            email: Some(format!("user{u}@gen{}.example", spec.seed)),
            invite_code: crate::events::invite_code(&loc.uid, &cuid, u as u64),
            apple_account: associated.then(|| format!("user{u}@{}", loc.managed_domain)),
            status: if associated {
                user_status::ASSOCIATED
            } else {
                user_status::REGISTERED
            },
            client_user_id: cuid,
            modified: 0,
        });
    }
    for s in 0..spec.serial_numbers {
        loc.intern_serial(&format!("G{}{s:09}", spec.seed % 10));
    }
    // Assignments: spread evenly over assets; for each asset a stride walk over the holder space
    // gives distinct holders without remembering which were used.
    let n_assets = loc.assets.len();
    if n_assets == 0 {
        return Ok(());
    }
    loc.assignments.reserve(spec.assignments);
    let (serials, users) = (spec.serial_numbers, spec.users);
    for a in 0..n_assets {
        let count = spec.assignments / n_assets + usize::from(a < spec.assignments % n_assets);
        let device = loc.assets[a].device_assignable;
        let space = if device { serials + users } else { users };
        if count > space {
            return Err(format!(
                "generate: asset {} needs {count} holders but only {space} can hold it",
                loc.assets[a].adam_id
            ));
        }
        let stride = coprime_stride(space);
        let offset = if space > 0 {
            rng.random_range(0..space)
        } else {
            0
        };
        for h in 0..count {
            let pos = (offset + h * stride) % space;
            let holder = if device && pos < serials {
                Holder::Device(pos as u32)
            } else {
                Holder::User((if device { pos - serials } else { pos }) as u32)
            };
            loc.assignments.insert(a as u32, holder, 0);
        }
        let rec = &mut loc.assets[a];
        rec.assigned = count as i64;
        rec.total = count as i64
            + (count as i64 * i64::from(spec.free_percent)) / 100
            + rng.random_range(0..5);
    }
    Ok(())
}

/// A step that visits every position of `0..space` once (coprime with `space`).
fn coprime_stride(space: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    if space <= 1 {
        return 1;
    }
    let mut s = (space as f64 * 0.618) as usize | 1;
    while gcd(s, space) != 1 {
        s += 2;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_from(spec: &str) -> World {
        let mut w = World::new(Default::default());
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        generate(&mut w, &GenerateSpec::parse_flag(spec).unwrap(), now).unwrap();
        w
    }

    #[test]
    fn same_seed_same_data() {
        let spec = "seed=3,locations=2,assets=30,users=40,serialNumbers=50,assignments=900";
        let (a, b) = (world_from(spec), world_from(spec));
        for (x, y) in a.locations.iter().zip(&b.locations) {
            assert_eq!(x.uid, y.uid);
            assert_eq!(x.assets, y.assets);
            assert_eq!(x.assignments.rows(), y.assignments.rows());
        }
        assert_eq!(a.current_token, b.current_token);
        let c =
            world_from("seed=4,locations=2,assets=30,users=40,serialNumbers=50,assignments=900");
        assert_ne!(a.locations[0].assets, c.locations[0].assets);
    }

    #[test]
    fn counts_are_consistent_and_holders_distinct() {
        let w = world_from("seed=9,assets=7,users=30,serialNumbers=20,assignments=300");
        let loc = &w.locations[0];
        assert_eq!(loc.assignments.len(), 300);
        for (i, a) in loc.assets.iter().enumerate() {
            let held = loc
                .assignments
                .rows()
                .iter()
                .filter(|r| r.asset == i as u32)
                .count() as i64;
            assert_eq!(a.assigned, held);
            assert!(a.total >= a.assigned && a.available() >= 0);
            if !a.device_assignable {
                assert!(loc
                    .assignments
                    .rows()
                    .iter()
                    .all(|r| r.asset != i as u32 || matches!(r.holder, Holder::User(_))));
            }
        }
    }

    #[test]
    fn impossible_specs_are_refused() {
        let mut w = World::new(Default::default());
        let spec =
            GenerateSpec::parse_flag("assets=1,users=2,serialNumbers=0,assignments=10").unwrap();
        assert!(generate(&mut w, &spec, Utc::now())
            .unwrap_err()
            .contains("holders"));
        assert!(GenerateSpec::parse_flag("bogus=1")
            .unwrap_err()
            .contains("unknown field"));
    }
}
