//! Both sides (feature `app`): the dashboard's texts, one table per language (`en.rs`, `zh_cn.rs`)
//! of the shape in `table.rs`.

use crate::client::i18n::Lang;

mod en;
mod table;
mod zh_cn;

pub(crate) use table::Texts;

impl Texts {
    /// The table of `lang`.
    pub(crate) fn of(lang: Lang) -> &'static Texts {
        match lang {
            Lang::En => &en::TEXTS,
            Lang::ZhCn => &zh_cn::TEXTS,
        }
    }
}
