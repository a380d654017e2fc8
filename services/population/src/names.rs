//! Plausible Chinese names of people and enterprises.

use crate::rng::Draw;
use crate::sme::Industry;

/// Common surnames with rough weights (national frequency, nudged to Shanghai, where
/// 徐, 朱, 沈, 陆, 顾 and 钱 are more frequent than nationally).
const SURNAMES: [(&str, u32); 64] = [
    ("王", 70),
    ("李", 66),
    ("张", 72),
    ("刘", 48),
    ("陈", 62),
    ("杨", 30),
    ("黄", 28),
    ("赵", 22),
    ("吴", 26),
    ("周", 30),
    ("徐", 34),
    ("孙", 18),
    ("马", 12),
    ("朱", 30),
    ("胡", 16),
    ("郭", 12),
    ("何", 11),
    ("高", 11),
    ("林", 12),
    ("罗", 10),
    ("郑", 10),
    ("梁", 8),
    ("谢", 8),
    ("宋", 7),
    ("唐", 8),
    ("许", 9),
    ("韩", 6),
    ("冯", 6),
    ("邓", 6),
    ("曹", 8),
    ("彭", 5),
    ("曾", 5),
    ("肖", 5),
    ("田", 4),
    ("董", 5),
    ("袁", 6),
    ("潘", 6),
    ("于", 4),
    ("蒋", 8),
    ("蔡", 8),
    ("余", 4),
    ("杜", 4),
    ("叶", 6),
    ("程", 4),
    ("苏", 4),
    ("魏", 4),
    ("吕", 4),
    ("丁", 5),
    ("任", 3),
    ("沈", 22),
    ("姚", 8),
    ("卢", 3),
    ("姜", 4),
    ("崔", 2),
    ("钟", 3),
    ("谭", 2),
    ("陆", 20),
    ("汪", 5),
    ("范", 5),
    ("金", 9),
    ("顾", 18),
    ("钱", 10),
    ("施", 8),
    ("欧阳", 1),
];

const SURNAME_WEIGHTS: [u32; SURNAMES.len()] = {
    let mut w = [0; SURNAMES.len()];
    let mut i = 0;
    while i < w.len() {
        w[i] = SURNAMES[i].1;
        i += 1;
    }
    w
};

const MALE_OLD: [&str; 40] = [
    "伟", "强", "军", "勇", "建", "国", "明", "华", "平", "刚", "林", "斌", "忠", "德", "荣", "海",
    "福", "兴", "春", "生", "根", "宝", "龙", "庆", "云", "新", "志", "卫", "东", "民", "峰", "祥",
    "金", "泉", "良", "雄", "武", "成", "康", "永",
];
const MALE_NEW: [&str; 40] = [
    "浩", "宇", "轩", "杰", "涛", "磊", "鹏", "超", "凯", "俊", "帆", "晨", "睿", "博", "文", "泽",
    "昊", "天", "翔", "嘉", "毅", "铭", "哲", "航", "宁", "彬", "旭", "阳", "辰", "逸", "子", "梓",
    "然", "钧", "晟", "皓", "奕", "琛", "煜", "骏",
];
const FEMALE_OLD: [&str; 40] = [
    "芳", "丽", "敏", "静", "艳", "娟", "霞", "燕", "玲", "桂", "英", "秀", "兰", "萍", "红", "梅",
    "珍", "凤", "琴", "云", "华", "美", "莉", "慧", "蓓", "玉", "菊", "月", "娣", "妹", "群", "芬",
    "琳", "蕙", "雅", "君", "莲", "青", "洁", "虹",
];
const FEMALE_NEW: [&str; 40] = [
    "婷", "雪", "琳", "晶", "颖", "倩", "怡", "欣", "雯", "涵", "诗", "梦", "瑶", "琪", "思", "悦",
    "可", "馨", "雨", "萱", "佳", "妍", "蕾", "璐", "露", "嘉", "钰", "彤", "菲", "楠", "茜", "漪",
    "婕", "蓉", "琦", "晓", "依", "心", "语", "安",
];

/// A person's name: surname and one or two given-name characters, in the style of the
/// birth cohort.
pub(crate) fn person_name(d: &mut Draw, male: bool, age: i64) -> String {
    let surname = SURNAMES[d.weighted(&SURNAME_WEIGHTS)].0;
    let pool: &[&str] = match (male, age > 45) {
        (true, true) => &MALE_OLD,
        (true, false) => &MALE_NEW,
        (false, true) => &FEMALE_OLD,
        (false, false) => &FEMALE_NEW,
    };
    let mut name = String::with_capacity(12);
    name.push_str(surname);
    name.push_str(d.pick::<&str>(pool));
    // two-character given names are the norm for younger people
    let two = if age > 45 { 0.6 } else { 0.85 };
    if d.chance(two) {
        name.push_str(d.pick::<&str>(pool));
    }
    name
}

/// Characters for trade names (字号).
const BRAND: [&str; 80] = [
    "恒", "信", "华", "鑫", "瑞", "泰", "盛", "达", "诚", "源", "博", "远", "宏", "昌", "隆", "兴",
    "汇", "嘉", "联", "创", "凯", "安", "德", "新", "星", "海", "浦", "申", "沪", "东", "明", "智",
    "睿", "捷", "腾", "启", "致", "卓", "锦", "格", "润", "和", "丰", "益", "晟", "弘", "亿", "通",
    "广", "元", "金", "银", "宝", "峰", "天", "宇", "辰", "旭", "阳", "光", "美", "优", "佳", "合",
    "正", "中", "环", "球", "科", "盈", "富", "永", "久", "聚", "云", "帆", "杉", "朗", "艾", "迪",
];

/// Line-of-business words (行业表述) per industry.
fn business_words(industry: Industry) -> &'static [&'static str] {
    match industry {
        Industry::Agriculture => &["农业发展", "生态农业", "农业科技", "果蔬专业"],
        Industry::Industry => &[
            "机械制造",
            "电子科技",
            "精密机械",
            "新材料科技",
            "实业",
            "汽车配件",
            "生物医药",
        ],
        Industry::Construction => &["建设工程", "建筑工程", "装饰工程", "市政工程"],
        Industry::Wholesale => &["贸易", "国际贸易", "供应链管理", "进出口", "商贸"],
        Industry::Retail => &["商贸", "超市", "便利店", "电子商务", "医药连锁"],
        Industry::Transport => &["物流", "运输", "货运代理", "客运"],
        Industry::Warehousing => &["仓储", "仓储物流", "冷链物流"],
        Industry::Postal => &["快递", "速递", "配送服务"],
        Industry::Accommodation => &["酒店管理", "宾馆", "公寓管理"],
        Industry::Catering => &["餐饮管理", "餐饮", "食品", "小吃店"],
        Industry::InformationTransmission => &["通信技术", "网络科技", "数据服务"],
        Industry::SoftwareIt => &["信息技术", "软件", "网络科技", "智能科技", "数字科技"],
        Industry::RealEstate => &["房地产开发", "置业", "房地产"],
        Industry::PropertyManagement => &["物业管理", "物业服务"],
        Industry::LeasingBusiness => &[
            "商务咨询",
            "企业管理咨询",
            "人力资源",
            "广告",
            "租赁",
            "会展服务",
        ],
        Industry::Other => &[
            "文化传播",
            "教育科技",
            "健康管理",
            "环保科技",
            "家政服务",
            "体育发展",
        ],
    }
}

/// An enterprise name: `上海` + trade name + line of business + legal form.
pub(crate) fn enterprise_name(d: &mut Draw, industry: Industry, large: bool) -> String {
    let mut name = String::with_capacity(48);
    name.push_str("上海");
    let a = d.pick(&BRAND);
    let mut b = d.pick(&BRAND);
    if b == a {
        b = &BRAND[(d.below(BRAND.len() as u32 - 1) as usize + 1) % BRAND.len()];
    }
    name.push_str(a);
    name.push_str(b);
    name.push_str(d.pick::<&str>(business_words(industry)));
    if large && d.chance(0.4) {
        name.push_str("股份有限公司");
    } else {
        name.push_str("有限公司");
    }
    name
}

/// Vocational qualification and skill-level certificates (职业资格 / 职业技能等级证书).
pub(crate) const CERTIFICATES: [&str; 20] = [
    "电工（四级）",
    "焊工（四级）",
    "育婴员（四级）",
    "养老护理员（五级）",
    "中式烹调师（四级）",
    "中式面点师（五级）",
    "保育师（四级）",
    "美容师（五级）",
    "美发师（四级）",
    "汽车维修工（四级）",
    "叉车司机（特种作业）",
    "计算机程序设计员（三级）",
    "网络与信息安全管理员（三级）",
    "健康管理师（三级）",
    "企业人力资源管理师（三级）",
    "电子商务师（四级）",
    "物流服务师（四级）",
    "保安员（五级）",
    "家政服务员（四级）",
    "西式面点师（四级）",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{derive_key, Draw};

    #[test]
    fn names_are_chinese_and_short() {
        let mut d = Draw::new(derive_key(1, 2), 3);
        for i in 0..2000 {
            let n = person_name(&mut d, i % 2 == 0, 20 + i % 60);
            let len = n.chars().count();
            assert!((2..=4).contains(&len), "{n}");
            assert!(
                n.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{n}"
            );
            let ind = crate::sme::Industry::ALL[i as usize % 16];
            let e = enterprise_name(&mut d, ind, i % 7 == 0);
            assert!(e.starts_with("上海") && e.ends_with("有限公司"), "{e}");
            assert!(
                e.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{e}"
            );
            assert!(e.chars().count() <= 20, "{e}");
        }
    }
}
