//! The team page's query, written once for both backends: two parts (active users, then the
//! agents matched to no active user), each counted and paged with `LIMIT`/`OFFSET` over an
//! index in its display order (migration `20261130100100_people_indexes`). Holding and
//! suspended are read from the engine's state blob with the JSON operators `->`/`->>`, which
//! SQLite (3.38+) and Postgres both have. Expanded by [`impl_people!`] next to
//! [`super::impl_store!`], whose `list_people` calls it.

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`, the body of `Store::list_people`.
macro_rules! impl_people {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn people_page(
                &self,
                q: &$crate::store::people::PeopleQuery,
            ) -> StoreResult<$crate::store::people::PeoplePage> {
                use $crate::store::people::{PeoplePage, PeopleSort, PeopleState, Person};
                let pattern = format!("%{}%", escape_like(&q.query.to_lowercase()));
                let search = !q.query.is_empty();
                let now = q.now.timestamp_millis();
                let per_page = i64::from(q.per_page.max(1));
                let offset = i64::from(q.page.max(1) - 1) * per_page;
                let users_wanted = !matches!(q.state, Some(PeopleState::NoTeamsUser));
                let agents_wanted = matches!(q.state, None | Some(PeopleState::NoTeamsUser));

                // The filters of the users' part, after `FROM users u LEFT JOIN user_state s`.
                const HOLDING: &str = "((s.state -> 't2c' ->> 'pending') IS NOT NULL \
                    OR (s.state -> 'c2t' ->> 'pending') IS NOT NULL)";
                let user_filter = |b: &mut sqlx::QueryBuilder<'_, $db>| {
                    b.push(" WHERE u.active");
                    if search {
                        b.push(" AND (LOWER(COALESCE(u.display_name, '')) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(u.upn) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(COALESCE(u.mail, '')) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(COALESCE(u.cc_agent_id, '')) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\')");
                    }
                    if let Some(c) = &q.connector {
                        b.push(" AND u.cc_connector = ").push_bind(c.clone());
                    }
                    let suspended = |b: &mut sqlx::QueryBuilder<'_, $db>| {
                        b.push("COALESCE(CAST(s.state ->> 'suspended_until' AS BIGINT) > ")
                            .push_bind(now)
                            .push(", FALSE)");
                    };
                    match q.state {
                        None | Some(PeopleState::NoTeamsUser) => {}
                        Some(PeopleState::Unmatched) => {
                            b.push(" AND u.cc_agent_id IS NULL");
                        }
                        Some(PeopleState::Suspended) => {
                            b.push(" AND u.cc_agent_id IS NOT NULL AND ");
                            suspended(b);
                        }
                        Some(PeopleState::Holding) => {
                            b.push(" AND u.cc_agent_id IS NOT NULL AND NOT ");
                            suspended(b);
                            b.push(" AND COALESCE(").push(HOLDING).push(", FALSE)");
                        }
                        Some(PeopleState::Ok) => {
                            b.push(" AND u.cc_agent_id IS NOT NULL AND NOT ");
                            suspended(b);
                            b.push(" AND NOT COALESCE(").push(HOLDING).push(", FALSE)");
                        }
                    }
                };
                let agent_filter = |b: &mut sqlx::QueryBuilder<'_, $db>| {
                    b.push(
                        " WHERE NOT EXISTS (SELECT 1 FROM users m WHERE m.active \
                         AND m.cc_connector = a.connector AND m.cc_agent_id = a.agent_id)",
                    );
                    if search {
                        b.push(" AND (LOWER(COALESCE(a.display_name, '')) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(a.agent_id) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\' OR LOWER(COALESCE(a.email, '')) LIKE ")
                            .push_bind(pattern.clone())
                            .push(" ESCAPE '\\')");
                    }
                    if let Some(c) = &q.connector {
                        b.push(" AND a.connector = ").push_bind(c.clone());
                    }
                };

                let mut total: u64 = 0;
                let mut people = Vec::new();
                let mut users_total: i64 = 0;
                if users_wanted {
                    // The engine's state is read only when the state filter needs it.
                    let needs_state = matches!(
                        q.state,
                        Some(PeopleState::Ok | PeopleState::Holding | PeopleState::Suspended)
                    );
                    let mut b = sqlx::QueryBuilder::<$db>::new(if needs_state {
                        "SELECT COUNT(*) FROM users u LEFT JOIN user_state s ON s.user_id = u.teams_id"
                    } else {
                        "SELECT COUNT(*) FROM users u"
                    });
                    user_filter(&mut b);
                    users_total = b.build_query_scalar::<i64>().fetch_one(&self.pool).await.map_err(db_err)?;
                    if offset < users_total {
                        let mut b = sqlx::QueryBuilder::<$db>::new(
                            "SELECT u.teams_id, u.upn, u.mail, u.display_name, u.business_phones, \
                             u.mobile_phone, u.cc_connector, u.cc_agent_id, u.active, u.updated_at, \
                             s.state AS engine_state, \
                             ot.status AS t_status, ot.observed_at AS t_at, ot.source AS t_source, \
                             oc.status AS c_status, oc.observed_at AS c_at, oc.source AS c_source \
                             FROM users u LEFT JOIN user_state s ON s.user_id = u.teams_id \
                             LEFT JOIN observed_status ot ON ot.user_id = u.teams_id AND ot.side = 'teams' \
                             LEFT JOIN observed_status oc ON oc.user_id = u.teams_id AND oc.side = 'contact_center'",
                        );
                        user_filter(&mut b);
                        b.push(" ORDER BY ");
                        match q.sort {
                            PeopleSort::Name => {}
                            // Needing attention first: suspended, holding, unmatched, ok.
                            PeopleSort::State => {
                                b.push("CASE WHEN u.cc_agent_id IS NULL THEN 2 \
                                        WHEN COALESCE(CAST(s.state ->> 'suspended_until' AS BIGINT) > ")
                                    .push_bind(now)
                                    .push(", FALSE) THEN 0 WHEN COALESCE(")
                                    .push(HOLDING)
                                    .push(", FALSE) THEN 1 ELSE 3 END, ");
                            }
                            // The newer of the two sides' times; people never seen last (the
                            // explicit rank keeps that the same on both backends).
                            PeopleSort::LastChange => {
                                b.push(
                                    "CASE WHEN ot.observed_at IS NULL AND oc.observed_at IS NULL \
                                     THEN 1 ELSE 0 END, CASE WHEN oc.observed_at IS NULL \
                                     OR ot.observed_at > oc.observed_at THEN ot.observed_at \
                                     ELSE oc.observed_at END DESC, ",
                                );
                            }
                        }
                        b.push("COALESCE(u.display_name, u.upn), u.teams_id LIMIT ")
                            .push_bind(per_page)
                            .push(" OFFSET ")
                            .push_bind(offset);
                        let rows = b.build().fetch_all(&self.pool).await.map_err(db_err)?;
                        for r in &rows {
                            people.push(person_row(r).map_err(db_err)?);
                        }
                    }
                    total += users_total as u64;
                }
                if agents_wanted {
                    let mut b = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM agents a");
                    agent_filter(&mut b);
                    let agents_total = b.build_query_scalar::<i64>().fetch_one(&self.pool).await.map_err(db_err)?;
                    let room = per_page - people.len() as i64;
                    if room > 0 && offset + per_page > users_total {
                        let mut b = sqlx::QueryBuilder::<$db>::new(
                            "SELECT a.connector, a.agent_id, a.email, a.username, a.display_name, \
                             a.updated_at FROM agents a",
                        );
                        agent_filter(&mut b);
                        b.push(" ORDER BY COALESCE(a.display_name, a.agent_id), a.connector, a.agent_id LIMIT ")
                            .push_bind(room)
                            .push(" OFFSET ")
                            .push_bind((offset - users_total).max(0));
                        let rows = b.build().fetch_all(&self.pool).await.map_err(db_err)?;
                        for r in &rows {
                            people.push(Person::Agent(agent_row(r).map_err(db_err)?));
                        }
                    }
                    total += agents_total as u64;
                }
                Ok(PeoplePage { people, total })
            }
        }

        /// `%`, `_` and `\` taken literally in a `LIKE … ESCAPE '\'` pattern.
        fn escape_like(s: &str) -> String {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }

        fn person_row(r: &DbRow) -> Result<$crate::store::people::Person, sqlx::Error> {
            let user = user_row(r)?;
            let side = |prefix: &str, side: $crate::model::Side| -> Result<Option<ObservedStatus>, sqlx::Error> {
                let status: Option<Json<serde_json::Value>> = r.try_get(format!("{prefix}_status").as_str())?;
                let Some(status) = status else { return Ok(None) };
                Ok(Some(ObservedStatus {
                    user_id: user.teams_id.clone(),
                    side,
                    status: status.0,
                    observed_at: r.try_get(format!("{prefix}_at").as_str())?,
                    source: r.try_get(format!("{prefix}_source").as_str())?,
                }))
            };
            let teams = side("t", $crate::model::Side::Teams)?;
            let contact_center = side("c", $crate::model::Side::ContactCenter)?;
            let engine_state: Option<Json<JsonText>> = r.try_get("engine_state")?;
            Ok($crate::store::people::Person::User(Box::new(
                $crate::store::people::PersonUser {
                    user,
                    teams,
                    contact_center,
                    engine_state: engine_state.map(|j| j.0),
                },
            )))
        }
    };
}

pub(crate) use impl_people;
