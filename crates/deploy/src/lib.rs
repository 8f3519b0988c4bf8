//! Deployments: an app or book × a collection × an action. Today: the plan a deployment shows
//! before it acts — what license each target claims (the rule in `allot_domain::licensing`), what
//! is already licensed, and how the free licenses of the chosen tokens cover the rest.

pub mod execute;
pub mod ledger;
pub mod plan;
mod reclaim;

pub use execute::{declarations_for, status, DeployError, Executor, MdmHealth, MAX_PUSH_ATTEMPTS};
pub use plan::{
    plan_deployment, unusable, Action, DeploymentPlan, PlanError, PlanRequest, TokenPlan,
};
