/** Sample `qubes.xml` documents shared by the catalogue tests (written after the spec, §10). */

/** R1 (format 1): no admin VM, no backup_* attributes (spec §10.2). */
export const R1_XML = `<?xml version='1.0' encoding='UTF-8'?>
<QubesVmCollection default_template="1" default_netvm="3" default_fw_netvm="2" updatevm="3">
  <QubesTemplateVm qid="1" name="fedora-14-x64" label="black" template_qid="none"
      dir_path="/var/lib/qubes/vm-templates/fedora-14-x64" conf_file="fedora-14-x64.conf"
      installed_by_rpm="True" private_img="private.img" root_img="root.img"/>
  <QubesNetVm qid="2" name="netvm" label="red" template_qid="1" netid="1"
      dir_path="/var/lib/qubes/servicevms/netvm" installed_by_rpm="False"/>
  <QubesProxyVm qid="3" name="firewallvm" label="green" template_qid="1" netvm_qid="2" netid="2"
      dir_path="/var/lib/qubes/servicevms/firewallvm"/>
  <QubesAppVm qid="4" name="work" label="blue" template_qid="1" netvm_qid="3"
      dir_path="/var/lib/qubes/appvms/work" private_img="private.img"/>
  <QubesAppVm qid="5" name="personal" label="yellow" template_qid="1" netvm_qid="3"
      dir_path="/var/lib/qubes/appvms/personal/" private_img="private.img"/>
  <QubesAppVm qid="6" name="escape" label="red" template_qid="1"
      dir_path="/var/lib/qubes/../../etc" private_img="private.img"/>
  <QubesDisposableVm qid="7" name="disp1" label="red" template_qid="1" dispid="1"/>
</QubesVmCollection>
`;

/** R2-style (format 2): the spec's §10.1 sample. */
export const R2_XML =
  `<QubesVmCollection default_template="1" default_netvm="3" default_fw_netvm="2" updatevm="3" clockvm="2" default_kernel="3.12.22-1">
  <QubesAdminVm qid="0" name="dom0" label="black" dir_path="None" backup_content="True"
      backup_path="dom0-home/alice" backup_size="123863040" include_in_backups="True"
      installed_by_rpm="False" internal="False"/>
  <QubesTemplateVm qid="1" name="fedora-20-x64" label="black" template_qid="none"
      dir_path="/var/lib/qubes/vm-templates/fedora-20-x64" installed_by_rpm="True"
      backup_content="False" backup_path="" backup_size="0"/>
  <QubesNetVm qid="2" name="netvm" label="red" template_qid="1" netid="1"
      dir_path="/var/lib/qubes/servicevms/netvm" backup_content="False" backup_path="" backup_size="0"/>
  <QubesProxyVm qid="3" name="firewallvm" label="green" template_qid="1" netvm_qid="2" netid="2"
      dir_path="/var/lib/qubes/servicevms/firewallvm" backup_content="False" backup_path="" backup_size="0"/>
  <QubesTemplateVm qid="7" name="my-tpl" label="gray" template_qid="none"
      dir_path="/var/lib/qubes/vm-templates/my-tpl" installed_by_rpm="False"
      backup_content="True" backup_path="vm7" backup_size="4431216640"/>
  <QubesAppVm qid="9" name="notes" label="yellow" template_qid="7" netvm_qid="none"
      uses_default_netvm="False" dir_path="/var/lib/qubes/appvms/notes"
      private_img="private.img" backup_content="True" backup_path="vm9" backup_size="2097152000"/>
  <QubesAppVm qid="11" name="legacy" label="blue" template_qid="none" netvm_qid="3"
      uses_default_netvm="True" dir_path="/var/lib/qubes/appvms/legacy"
      backup_content="True" backup_path="vm11" backup_size="10737418240"/>
</QubesVmCollection>
`;

/**
 * R3.2-style (format 3): uuid, pool_name, an HVM, a stale backup_path on an excluded VM, a
 * disposable VM, names not hidden, dom0 user `user0` (the rstrip trap).
 */
export const R32_XML = `<?xml version="1.0" encoding="utf-8"?>
<!-- written by Qubes R3.2 -->
<QubesVmCollection clockvm="2" default_fw_netvm="2" default_kernel="4.4.14-11" default_netvm="3" default_template="1" updatevm="3">
  <QubesAdminVm backup_content="True" backup_path="dom0-home/user0" backup_size="41943040" backup_timestamp="1500000000" qid="0" name="dom0" label="black" dir_path="None" uuid="00000000-0000-0000-0000-000000000000"/>
  <QubesTemplateVm qid="1" name="fedora-23" uuid="6b7e8b52-0000-4000-8000-000000000001" label="black" template_qid="none" pool_name="default" dir_path="/var/lib/qubes/vm-templates/fedora-23" backup_content="True" backup_path="vm-templates/fedora-23" backup_size="10737418240"/>
  <QubesNetVm qid="2" name="sys-net" uuid="6b7e8b52-0000-4000-8000-000000000002" label="red" template_qid="1" netid="1" pool_name="default" dir_path="/var/lib/qubes/servicevms/sys-net" backup_content="False" backup_path="servicevms/sys-net" backup_size="524288000" pci_strictreset="True" pci_e820_host="True"/>
  <QubesProxyVm qid="3" name="sys-firewall" uuid="6b7e8b52-0000-4000-8000-000000000003" label="green" template_qid="1" netvm_qid="2" netid="2" dir_path="/var/lib/qubes/servicevms/sys-firewall" backup_content="False" backup_path="" backup_size="0"/>
  <QubesAppVm qid="5" name="work" uuid="6b7e8b52-0000-4000-8000-000000000005" label="blue" template_qid="1" netvm_qid="3" dir_path="/var/lib/qubes/appvms/work" firewall_conf="firewall.xml" dispvm_netvm="3" uses_default_dispvm_netvm="True" backup_content="True" backup_path="appvms/work" backup_size="2147483648"/>
  <QubesAppVm qid="50" name="work-web" uuid="6b7e8b52-0000-4000-8000-000000000050" label="orange" template_qid="1" netvm_qid="3" dir_path="/var/lib/qubes/appvms/work-web" backup_content="True" backup_path="appvms/work-web" backup_size="1048576"/>
  <QubesHVm qid="14" name="win7" label="purple" template_qid="none" netvm_qid="none" dir_path="/var/lib/qubes/appvms/win7" drive="None" timezone="localtime" qrexec_installed="False" guiagent_installed="False" seamless_gui_mode="False" backup_content="True" backup_path="appvms/win7" backup_size="21474836480"/>
  <QubesTemplateHVm qid="15" name="win7-tpl" label="black" template_qid="none" dir_path="/var/lib/qubes/vm-templates/win7-tpl" backup_content="False" backup_path="vm-templates/win7-tpl" backup_size="1"/>
  <QubesAppVm qid="16" name="win7-app" label="green" template_qid="15" dir_path="/var/lib/qubes/appvms/win7-app" backup_content="False"/>
  <QubesDisposableVm dispid="50" firewall_conf="firewall.xml" label="red" name="disp50" netvm_qid="2" qid="17" template_qid="1"/>
</QubesVmCollection>
`;

/** R4-style (format 4): the spec's §10.3 sample, completed. */
export const R4_XML = `<?xml version='1.0' encoding='utf-8'?>
<qubes>
  <labels>
    <label id="label-1" color="0xcc0000">red</label>
    <label id="label-2" color="0xf57900">orange</label>
    <label id="label-3" color="0xedd400">yellow</label>
    <label id="label-4" color="0x73d216">green</label>
    <label id="label-5" color="0x555753">gray</label>
    <label id="label-6" color="0x3465a4">blue</label>
    <label id="label-7" color="0x75507b">purple</label>
    <label id="label-8" color="0x000000">black</label>
  </labels>
  <pools>
    <pool name="lvm" driver="lvm_thin" thin_pool="pool00" volume_group="qubes_dom0"/>
  </pools>
  <properties>
    <property name="default_template">fedora-39</property>
  </properties>
  <domains>
    <domain id="domain-0" class="AdminVM">
      <properties><property name="label">label-8</property></properties>
      <features>
        <feature name="backup-content">1</feature>
        <feature name="backup-path">dom0-home/alice</feature>
        <feature name="backup-size">41943040</feature>
      </features>
      <tags/> <devices class="pci"/>
    </domain>
    <domain id="domain-3" class="TemplateVM">
      <properties>
        <property name="qid">3</property>
        <property name="name">fedora-39</property>
        <property name="label">label-8</property>
      </properties>
      <features>
        <feature name="backup-content"></feature>
      </features>
    </domain>
    <domain id="domain-12" class="AppVM">
      <properties>
        <property name="qid">12</property>
        <property name="name">work</property>
        <property name="label">label-4</property>
        <property name="template">fedora-39</property>
        <property name="netvm">sys-firewall</property>
      </properties>
      <features>
        <feature name="backup-content">1</feature>
        <feature name="backup-path">vm12/</feature>
        <feature name="backup-size">2147483648</feature>
      </features>
      <volume-config>
        <volume name="private" pool="lvm" size="2147483648" save_on_stop="True" rw="True"/>
        <volume name="root" pool="lvm" snap_on_start="True" source="qubes_dom0/vm-fedora-39-root"/>
      </volume-config>
    </domain>
  </domains>
</qubes>
`;

/**
 * Core3 with eleven labels (ids past `label-8`), a plain-name label, a DispVM, a RemoteVM, a
 * StandaloneVM, an excluded domain with `backup-content` `False`, a `True` text, and a hostile
 * name.
 */
export const R43_XML = `<qubes>
  <labels>
    <label id="label-1" color="0xcc0000">red</label>
    <label id="label-2" color="0xf57900">orange</label>
    <label id="label-3" color="0xedd400">yellow</label>
    <label id="label-4" color="0x73d216">green</label>
    <label id="label-5" color="0x555753">gray</label>
    <label id="label-6" color="0x3465a4">blue</label>
    <label id="label-7" color="0x75507b">purple</label>
    <label id="label-8" color="0x000000">black</label>
    <label id="label-9" color="0x00ffff">cyan</label>
    <label id="label-10" color="0xff00ff">magenta</label>
    <label id="label-11" color="0xffffff">white &amp; bright</label>
  </labels>
  <properties/>
  <domains>
    <domain id="domain-5" class="DispVM">
      <properties>
        <property name="qid">5</property>
        <property name="name">disp1234</property>
        <property name="label">label-10</property>
        <property name="template">fedora-40-dvm</property>
      </properties>
      <features><feature name="backup-content">1</feature><feature name="backup-path">vm5/</feature></features>
    </domain>
    <domain id="domain-6" class="RemoteVM">
      <properties>
        <property name="qid">6</property>
        <property name="name">remote-box</property>
        <property name="label">label-11</property>
      </properties>
      <features><feature name="backup-content">False</feature><feature name="backup-path">vm6/</feature></features>
    </domain>
    <domain id="domain-7" class="StandaloneVM">
      <properties>
        <property name="qid">7</property>
        <property name="name">vault</property>
        <property name="label">purple</property>
      </properties>
      <features>
        <feature name="backup-content">True</feature>
        <feature name="backup-path">vm7/</feature>
        <feature name="backup-size">not-a-number</feature>
      </features>
    </domain>
    <domain id="domain-8" class="AppVM">
      <properties>
        <property name="qid">8</property>
        <property name="name">../../etc</property>
        <property name="label">label-9</property>
        <property name="template">fedora-40</property>
      </properties>
      <features><feature name="backup-content">1</feature><feature name="backup-path">vm8/</feature></features>
    </domain>
    <domain id="domain-50" class="AppVM">
      <properties>
        <property name="qid">50</property>
        <property name="name">mail</property>
        <property name="label">label-6</property>
      </properties>
      <features><feature name="backup-content">0</feature><feature name="backup-path">vm50/</feature></features>
    </domain>
  </domains>
</qubes>
`;
