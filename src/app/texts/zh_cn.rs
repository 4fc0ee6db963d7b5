//! Both sides (feature `app`): the dashboard's Simplified Chinese texts (简体中文).

use super::table::Texts;
use crate::client::format::thousands;

fn live_clients(clients: u64, instances: u32) -> String {
    format!(
        "{} 个在线客户端，分布在 {} 个实例上",
        thousands(clients),
        thousands(u64::from(instances))
    )
}

fn replayed(n: u64) -> String {
    match n {
        0 => "已重新连接，没有遗漏。".to_owned(),
        n => format!("已重新连接，补发了 {} 个遗漏的事件。", thousands(n)),
    }
}

/// 简体中文.
pub(crate) static TEXTS: Texts = Texts {
    name: "简体中文",
    language_label: "语言",
    title: "sse-status — 这个页面在线吗？",
    description: "如实显示本页面的实时连接状态。",
    not_found_title: "页面不存在 — sse-status",
    not_found_heading: "页面不存在",
    not_found_before_link: "这个地址上什么也没有。仪表盘在 ",
    not_found_after_link: "。",

    phases: [
        "连接中",
        "已连接",
        "重连中",
        "无响应",
        "离线",
        "被拒绝",
        "已暂停",
        "已关闭",
        "失败",
    ],

    tagline: "这个页面在线吗？如实、迅速地告诉你。",
    connection: "连接",
    state_for: " 已持续 ",
    connection_id: "连接 ID",
    server_id: "服务器 ID",
    this_tab: "本标签页",
    roles: [
        ("主导", "为其他标签页持有数据流"),
        ("跟随", "从另一个标签页获取数据流"),
        ("独立", "拥有自己的数据流"),
    ],
    tabs_sharing: "共享数据流的标签页",
    heartbeat: "心跳",
    ago_before: "",
    ago_after: "前",
    ping_every: ["每 ", " 一次心跳；静默 ", " 后视为无响应。"],
    waiting_first_event: "正在等待服务器的第一个事件。",
    reconnects: "重连",
    current_attempt: "当前尝试",
    successful_reconnects: "成功重连次数",
    last_event_id: "最后事件 ID",
    retries_by_itself: "页面会自动重试（指数退避加随机抖动）。",
    open_stream: "打开数据流",
    close_stream: "关闭数据流",
    live_clients: "在线客户端",
    live_clients_text: live_clients,
    store_notice:
        "更新延迟：事件日志暂时无法访问。本页面保持连接，恢复后会收到每一条已保存的更新。",
    timeline: "状态时间线",
    timeline_label: "状态变化，最新的在前",
    now: "当前",
    events: "事件",
    events_label: "收到的事件，最新的在前",
    no_events: "还没有事件。",
    resync_before: "错过了更新，数量未知（",
    resync_after: "）。请重新获取数据以确保完整。",
    resync_other_server: "服务器已重启",
    resync_other_log: "服务器现在把事件保存在别处",
    resync_too_old: "离开期间事件太多",
    resync_unknown: "服务器不认识我们的最后一个事件",
    replayed,
    server_restarted: "服务器已重启：本页面现在连接的是新的服务器进程。",
    access: "访问权限",
    anonymous: "匿名（仅接收广播）",
    topics_label: "主题",
    topics_hint: "本页面接收勾选的主题；更改后无需重新加载即可切换数据流。",
    sign_in_as: "登录为",
    sign_out: "退出登录",
    publish_to: "发布到",
    message: "消息",
    send: "发送",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(
            live_clients(1234, 3),
            "1,234 个在线客户端，分布在 3 个实例上"
        );
        assert_eq!(replayed(0), "已重新连接，没有遗漏。");
        assert_eq!(replayed(4), "已重新连接，补发了 4 个遗漏的事件。");
    }
}
