//! The suite macros. Each suite's `mod.rs` holds one list macro
//! (`__conformance_list!`, `__engine_list!`) that hands its names, by
//! module, to a callback; the callbacks here turn the list into tests
//! ([`conformance_suite!`](crate::conformance_suite),
//! [`engine_suite!`](crate::engine_suite)) and into the suites' `ALL`.

/// Instantiate the conformance suite for a backend: a module `conformance`
/// with one submodule per concern (`identity`, `factors`, `flows`,
/// `sessions`, `keys`, `policies`, `rbac`) and one `#[test]` per
/// guarantee, each on a store from `$factory` (an `async fn() -> S`
/// returning an empty store), plus `conformance::suite_is_complete`.
///
/// `conformance_suite!(fresh)` needs `S: ConformanceStore`;
/// `conformance_suite!(fresh, audit)` also runs `conformance::audit` and
/// needs `S: AuditedStore`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path $(,)?) => {
        $crate::__conformance_list!($crate::__suite_tests;
            plain, conformance, __countersign_conformance_store, $factory);
    };
    ($factory:path, audit $(,)?) => {
        $crate::__conformance_list!($crate::__suite_tests;
            audit, conformance, __countersign_conformance_store, $factory);
    };
}

/// Instantiate the login-engine suite for a backend: a module `engine`
/// with one submodule per concern (`login`, `factors`, `passkeys`,
/// `step_up`, `sessions`, `tokens`) and one `#[test]` per scenario, each on
/// a store from `$factory`, plus `engine::suite_is_complete`.
///
/// `engine_suite!(fresh)` needs `S: ConformanceStore`;
/// `engine_suite!(fresh, audit)` also runs `engine::audit` (the scenarios
/// whose audit rows are checked) and needs `S: AuditedStore`.
#[macro_export]
macro_rules! engine_suite {
    ($factory:path $(,)?) => {
        $crate::__engine_list!($crate::__suite_tests;
            plain, engine, __countersign_engine_store, $factory);
    };
    ($factory:path, audit $(,)?) => {
        $crate::__engine_list!($crate::__suite_tests;
            audit, engine, __countersign_engine_store, $factory);
    };
}

/// Callback of the list macros: the tests of one suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    (audit, $suite:ident, $store:ident, $factory:path;
        $($m:ident: [$($n:ident),* $(,)?]),* ; audit: [$($a:ident),* $(,)?]) => {
        async fn $store() -> impl $crate::AuditedStore {
            $factory().await
        }
        mod $suite {
            $( $crate::__suite_module!($suite, $store; $m: [$($n),*]); )*
            $crate::__suite_module!($suite, $store; audit: [$($a),*]);
            $crate::__suite_complete!($suite, true; $($m: [$($n),*],)* audit: [$($a),*]);
        }
    };
    (plain, $suite:ident, $store:ident, $factory:path;
        $($m:ident: [$($n:ident),* $(,)?]),* ; audit: [$($a:ident),* $(,)?]) => {
        async fn $store() -> impl $crate::ConformanceStore {
            $factory().await
        }
        mod $suite {
            $( $crate::__suite_module!($suite, $store; $m: [$($n),*]); )*
            $crate::__suite_complete!($suite, false; $($m: [$($n),*]),*);
        }
    };
}

/// One module of a suite's tests: a `#[test]` per name, calling
/// `$crate::$suite::$m::$name` on a fresh store.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_module {
    ($suite:ident, $store:ident; $m:ident: [$($n:ident),*]) => {
        mod $m {
            $(
                #[test]
                fn $n() {
                    $crate::run(async {
                        $crate::$suite::$m::$n(super::super::$store().await).await
                    });
                }
            )*
        }
    };
}

/// The `suite_is_complete` test: the tests instantiated here are the
/// suite's `ALL` (less its `audit::` names when audit is not opted in).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_complete {
    ($suite:ident, $audit:expr; $($m:ident: [$($n:ident),*]),* $(,)?) => {
        /// The suite instantiated here is the whole suite.
        #[test]
        fn suite_is_complete() {
            let here: &[&str] = &[$($(concat!(stringify!($m), "::", stringify!($n)),)*)*];
            let want: ::std::vec::Vec<&str> = $crate::$suite::ALL
                .iter()
                .copied()
                .filter(|n| $audit || !n.starts_with("audit::"))
                .collect();
            assert_eq!(here, want.as_slice());
        }
    };
}

/// Callback of the list macros: the suite's `ALL`.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_names {
    ($suite:ident; $($m:ident: [$($n:ident),* $(,)?]),* ; audit: [$($a:ident),* $(,)?]) => {
        /// Every name of the suite as `module::function`, in the order the
        /// suite runs them; the `audit::` ones run only when audit is opted in.
        pub const ALL: &[&str] = &[
            $($(concat!(stringify!($m), "::", stringify!($n)),)*)*
            $(concat!("audit::", stringify!($a)),)*
        ];
    };
}
