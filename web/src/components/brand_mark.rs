//! berth's logo.

use leptos::prelude::*;

/// berth's mark: a hull on the water line, drawn inline so it needs no extra request.
#[component]
pub fn BrandMark() -> impl IntoView {
    view! {
        <svg class="brand-mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
            <rect width="32" height="32" rx="8" fill="currentColor"></rect>
            <path d="M8 13h16l-2.5 6h-11z" fill="#fff"></path>
            <path d="M14 8h4v5h-4z" fill="#fff" opacity="0.8"></path>
            <path
                d="M6 23c2 0 2-1.4 4-1.4s2 1.4 4 1.4 2-1.4 4-1.4 2 1.4 4 1.4 2-1.4 4-1.4"
                stroke="#fff"
                stroke-width="1.8"
                stroke-linecap="round"
                fill="none"
            ></path>
        </svg>
    }
}
