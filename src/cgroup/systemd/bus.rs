//! The D-Bus exchange with systemd's manager: the only code that speaks D-Bus.
//! It runs in the helper process ([`super::helper`]), never in the launcher.

use zbus::blocking::{Connection, Proxy, proxy::Builder};
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, Value};

use super::{Bus, Property, ScopeRequest};

const DESTINATION: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// `StartTransientUnit(s name, s mode, a(sv) properties, a(sa(sv)) aux) -> o job`.
pub(super) type StartBody<'a> = (&'a str, &'a str, Vec<(&'a str, Value<'a>)>, Vec<(&'a str, Vec<(&'a str, Value<'a>)>)>);

/// The call's arguments for `request`.
pub(super) fn start_body(request: &ScopeRequest) -> StartBody<'_> {
    let properties = request.properties().into_iter().map(|(name, value)| (name, value_of(value))).collect();
    (&request.name, request.mode(), properties, Vec::new())
}

fn value_of(property: Property) -> Value<'static> {
    match property {
        Property::Bool(b) => Value::from(b),
        Property::Str(s) => Value::from(s),
        Property::Pids(pids) => Value::from(pids),
    }
}

/// Starts the scope and returns once systemd reports its job done, or why not.
pub(super) fn start_scope(request: &ScopeRequest) -> Result<(), String> {
    let connection = match request.bus {
        Bus::System => Connection::system(),
        Bus::User => Connection::session(),
    }
    .map_err(|e| format!("cannot connect to {}: {e}", request.bus.describe()))?;
    let manager: Proxy = Builder::new(&connection)
        .destination(DESTINATION)
        .and_then(|b| b.path(PATH))
        .and_then(|b| b.interface(MANAGER))
        .map_err(|e| e.to_string())?
        // The manager has hundreds of properties; none is needed.
        .cache_properties(CacheProperties::No)
        .build()
        .map_err(|e| format!("no systemd manager on {}: {e}", request.bus.describe()))?;
    // The match rule goes in before the call, or the signal may pass unseen;
    // filtered by unit name (argument 2) on the bus's side.
    let mut removed = manager
        .receive_signal_with_args("JobRemoved", &[(2, request.name.as_str())])
        .map_err(|e| format!("cannot listen for systemd's JobRemoved: {e}"))?;
    // Older managers send job signals only to subscribed clients.
    let _: Result<(), _> = manager.call("Subscribe", &());
    let job: OwnedObjectPath =
        manager.call("StartTransientUnit", &start_body(request)).map_err(|e| format!("StartTransientUnit {}: {e}", request.name))?;
    for signal in removed.by_ref() {
        let Ok((_id, path, _unit, result)) = signal.body().deserialize::<(u32, OwnedObjectPath, String, String)>() else { continue };
        if path != job {
            continue;
        }
        return match result.as_str() {
            "done" => Ok(()),
            other => Err(format!("systemd's job for {} ended `{other}`", request.name)),
        };
    }
    Err(format!("the bus closed before systemd's job for {} ended", request.name))
}
