//! Both sides: the banner's texts in Simplified Chinese.

use super::texts::{BannerTexts, CauseTexts};

/// Simplified Chinese.
pub(crate) static BANNER: BannerTexts = BannerTexts {
    connecting: "正在连接…",
    live: "在线",
    reconnecting: "正在重新连接…",
    server_restarting: "服务器正在重启…",
    stale: "连接无响应，正在检查…",
    offline: "您已离线",
    rejected: "访问被拒绝",
    paused: "已暂停",
    closed: "数据流已关闭",
    not_opened: "未连接",
    failed: "连接失败",
    attempt_before: "第 ",
    attempt_after: " 次尝试",
    next_try_before: "",
    next_try_after: " 秒后重试",
    trying_now: "正在尝试",
    retry_now: "立即重试",
    causes: CauseTexts {
        unreachable: "无法连接服务器",
        server_error: "服务器错误",
        heartbeat_missed: "未按时收到服务器心跳",
        offline: "您的设备已离线",
        rejected: "服务器拒绝了此页面（未授权）",
        server_closed: "服务器结束了数据流",
        hidden: "标签页隐藏期间已暂停",
        clock_jump: "从睡眠中唤醒",
        retry_now: "应您的要求重试",
        server_restarting: "服务器正在重启",
        handover: "正在从另一个标签页接管数据流",
        closed_by_page: "此页面已关闭连接",
        reauth: "正在续期访问权限",
        signed_out: "您已退出登录",
        revoked: "您的访问权限已被撤销",
        switch: "正在切换到此页面的新数据流",
        not_opened: "此页面尚未打开数据流",
    },
};
