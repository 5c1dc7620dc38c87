//! The router's state: private, with one sub-state per route group that axum hands to the
//! handlers through `FromRef`, so each handler gets only what it uses.

use axum::extract::FromRef;

use crate::app::Core;
use crate::connectors::ConnectorRegistry;
use crate::graph::notifications::NotificationReceiver;
use crate::http::api::ApiState;
use crate::http::console::ConsoleState;
use crate::http::graph::GraphWebhook;
use crate::http::health::Readiness;
use crate::http::messaging::MessagingHttp;
use crate::http::screen_pop::ScreenPops;
use crate::telemetry::Metrics;

#[derive(Clone, FromRef)]
pub struct AppState {
    readiness: Readiness,
    metrics: Metrics,
    webhook: GraphWebhook,
    connectors: ConnectorRegistry,
    api: ApiState,
    screen_pops: ScreenPops,
    messaging: MessagingHttp,
    console: ConsoleState,
}

impl AppState {
    pub(crate) fn new(
        core: &Core,
        receiver: NotificationReceiver,
        connectors: ConnectorRegistry,
        console: ConsoleState,
    ) -> Self {
        let cfg = &core.config;
        AppState {
            console,
            readiness: Readiness::new(core.store.clone(), core.health.clone()),
            metrics: core.metrics.clone(),
            webhook: GraphWebhook::new(receiver, cfg.graph.webhook.max_body_bytes),
            connectors,
            api: ApiState::new(
                core.store.clone(),
                core.inbox.clone(),
                cfg.api.bearer_token.clone(),
            ),
            screen_pops: ScreenPops::default(),
            messaging: MessagingHttp::default(),
        }
    }

    /// The messaging bridge's endpoints (absent: they answer 404).
    pub(crate) fn with_messaging(mut self, messaging: MessagingHttp) -> Self {
        self.messaging = messaging;
        self
    }

    /// Serves the screen-pop links of `pops`.
    pub(crate) fn with_screen_pops(mut self, pops: ScreenPops) -> Self {
        self.screen_pops = pops;
        self
    }
}
