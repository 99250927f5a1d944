//! The `login` page.

use super::*;
use store::accounts::{LoginAttempt, LoginOutcome, Proof};

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

impl LoginQuery {
    fn lang(&self) -> Lang {
        if self.lang.as_deref() == Some("en") { Lang::En } else { Lang::Zh }
    }
}

fn login_page(query: &LoginQuery, message: Option<&str>) -> Html<String> {
    let lang = query.lang();
    let mut action = String::from("/login");
    let mut params = Vec::new();
    if let Some(next) = query.next.as_deref() {
        params.push(format!("next={}", url_encode(next)));
    }
    if lang == Lang::En {
        params.push("lang=en".into());
    }
    if !params.is_empty() {
        action = format!("{action}?{}", params.join("&"));
    }
    let body = html! {
        @if let Some(m) = message { p.error { (m) } }
        form.login method="post" action=(action) {
            label { (lang.pick("用户名", "User name")) br; input type="text" name="username" autocomplete="username" required; }
            label { (lang.pick("密码", "Password")) br; input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { (lang.pick("登录", "Log in")) }
        }
    };
    let filters = Filters { lang: query.lang.clone(), ..Filters::default() };
    Html(html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            head {
                meta charset="utf-8";
                title { (lang.pick("登录", "Log in")) }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" type="image/svg+xml" href="/static/favicon.svg";
            }
            body {
                header.top { span.brand { (lang.pick("不动产登记“全程网办”监测", "Online registration monitor")) }
                    a.lang href=(filters.link("/login", &[("lang", if lang == Lang::En { None } else { Some("en") })])) { (lang.pick("English", "中文")) } }
                main { h1 { (lang.pick("登录", "Log in")) } (body) }
            }
        }
    }
    .into_string())
}

/// `GET /login`.
pub async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    login_page(&query, None).into_response()
}

/// `POST /login`: checks the password, opens a session, lands on `next` or the role's home.
pub async fn login(
    State(d): State<Dashboards>,
    axum::Extension(client): axum::Extension<crate::Client>,
    Query(query): Query<LoginQuery>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = query.lang();
    let now = (d.clock)();
    let fail = |status: StatusCode, message: &str| (status, login_page(&query, Some(message))).into_response();
    let account = match d.store.account_by_name(form.username.trim()).await {
        Ok(a) => a,
        Err(e) => return error_page(DashError::Internal(e.to_string()), lang),
    };
    let wrong = lang.pick("用户名或密码错误。", "Wrong user name or password.");
    // The password is checked first, at the same cost for every name; the store's one login policy decides.
    let proof = match &account {
        Some(account) if auth::verify_password(&form.password, &account.password_hash) => Proof::Right,
        Some(_) => Proof::Wrong,
        None => {
            auth::verify_dummy(&form.password);
            Proof::Wrong
        }
    };
    let attempt = LoginAttempt { name: form.username.trim(), account, proof, client: &client.0, now };
    let account = match d.store.decide_login(attempt).await {
        Ok(LoginOutcome::Allowed(account)) => account,
        Ok(LoginOutcome::Locked { until }) => {
            let minutes = (until - now).num_minutes() + 1;
            let message = match lang {
                Lang::Zh => format!("连续输错密码次数过多，账户已锁定，请 {minutes} 分钟后再试。"),
                Lang::En => format!("Too many wrong passwords: the account is locked; try again in {minutes} minutes."),
            };
            return fail(StatusCode::TOO_MANY_REQUESTS, &message);
        }
        Ok(LoginOutcome::Refused) => return fail(StatusCode::UNAUTHORIZED, wrong),
        Err(e) => return error_page(DashError::Internal(e.to_string()), lang),
    };
    let token = auth::new_token();
    if let Err(e) = d.store.open_session(&account, &auth::token_hash(&token), &client.0, now).await {
        return error_page(DashError::Internal(e.to_string()), lang);
    }
    let role = Role::from_code(&account.role);
    let next = query
        .next
        .as_deref()
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .and_then(|n| Page::ALL.into_iter().find(|p| p.path() == n))
        .filter(|p| role.is_some_and(|r| p.allows(r)))
        .or_else(|| role.and_then(Page::home))
        .map_or("/", Page::path);
    let next = if lang == Lang::En { format!("{next}?lang=en") } else { next.to_owned() };
    ([(header::SET_COOKIE, auth::session_cookie(&token, d.secure_cookies))], Redirect::to(&next)).into_response()
}

/// `POST /logout` (and `GET`): ends the session.
pub async fn logout(State(d): State<Dashboards>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::session_token(&headers)
        && let Err(e) = d.store.close_session(&auth::token_hash(&token)).await
    {
        return error_page(DashError::Internal(e.to_string()), Lang::Zh);
    }
    ([(header::SET_COOKIE, auth::clear_cookie(d.secure_cookies))], Redirect::to("/login")).into_response()
}
