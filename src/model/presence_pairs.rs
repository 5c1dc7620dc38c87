//! The Teams presences the bridge may write: Graph accepts only these availability/activity
//! pairs (reference/graph.md, "setPresence" and "setUserPreferredPresence"). Mapping rules are
//! validated against them at start, and the Graph client refuses anything else before sending.

/// The availability/activity pairs `setPresence` accepts.
pub const SET_PRESENCE_PAIRS: &[(&str, &str)] = &[
    ("Available", "Available"),
    ("Busy", "InACall"),
    ("Busy", "InAConferenceCall"),
    ("Away", "Away"),
    ("DoNotDisturb", "Presenting"),
];

/// The pairs `setUserPreferredPresence` accepts.
pub const PREFERRED_PAIRS: &[(&str, &str)] = &[
    ("Available", "Available"),
    ("Busy", "Busy"),
    ("DoNotDisturb", "DoNotDisturb"),
    ("BeRightBack", "BeRightBack"),
    ("Away", "Away"),
    ("Offline", "OffWork"),
];
