; Probity installer for Windows (NSIS 3).  Per-user: no administrator rights are needed or asked for.
;
; Build on Windows after PyInstaller made the one-folder bundle (docs/install.md, "Windows"):
;   makensis /DVERSION=0.1.0 /DFLAVOUR=cpu /DBUNDLE_DIR=build\dist-cpu\probity ^
;            /DOUTFILE=dist\probity-0.1.0-windows-x86_64-cpu-setup.exe installer\windows\probity.nsi
;
; What it does:
;   - copies the bundle to %LOCALAPPDATA%\Programs\Probity (the user may choose another folder)
;   - Start-menu shortcuts: Probity (the app) and "Probity command prompt" (a console with the
;     `probity` command on its PATH; the user's PATH itself is not edited)
;   - registers the .probity session type for this user, so a double-click opens the session
;   - writes an uninstaller, listed in Settings > Apps, that removes all of the above
;     (sessions, reports and settings in the user's own folders are kept)

Unicode true
ManifestDPIAware true
RequestExecutionLevel user
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "Pass /DVERSION=x.y.z"
!endif
!ifndef BUNDLE_DIR
  !error "Pass /DBUNDLE_DIR=<the PyInstaller folder holding probity.exe, probity-gui.exe and _internal>"
!endif
!ifndef FLAVOUR
  !define FLAVOUR "cpu"
!endif
!ifndef OUTFILE
  !define OUTFILE "probity-${VERSION}-windows-x86_64-${FLAVOUR}-setup.exe"
!endif
!ifndef ICON
  !define ICON "../icons/probity.ico"  ; makensis reads paths from the folder of this script
!endif

!define APP_NAME "Probity"
!define APP_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Probity"
!define PROG_ID "Probity.Session"
!define SHCNE_ASSOCCHANGED 0x08000000
!define SHCNF_IDLIST 0

Name "${APP_NAME} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\Probity"
InstallDirRegKey HKCU "${APP_KEY}" "InstallLocation"
BrandingText "${APP_NAME} ${VERSION} (${FLAVOUR})"

!include "MUI2.nsh"
!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\probity-gui.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start Probity"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer (${FLAVOUR})"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "Probity; third-party components: see THIRD-PARTY-LICENSES.txt"

Section "Probity" SecMain
  SectionIn RO
  SetShellVarContext current
  ; A reinstall replaces the previous program folder as a whole.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File "${BUNDLE_DIR}\probity.exe"
  File "${BUNDLE_DIR}\probity-gui.exe"
  File /r "${BUNDLE_DIR}\_internal"
  File "${BUNDLE_DIR}\THIRD-PARTY-LICENSES.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Start menu: the app, and a console where `probity` runs by name.
  CreateShortCut "$SMPROGRAMS\Probity.lnk" "$INSTDIR\probity-gui.exe" "" "$INSTDIR\probity-gui.exe" 0
  CreateShortCut "$SMPROGRAMS\Probity command prompt.lnk" "$SYSDIR\cmd.exe" \
    '/k "set "PATH=$INSTDIR;%PATH%" && probity --help"' "$INSTDIR\probity.exe" 0

  ; The .probity session type, for this user only (HKCU\Software\Classes).
  WriteRegStr HKCU "Software\Classes\.probity" "" "${PROG_ID}"
  WriteRegStr HKCU "Software\Classes\.probity" "Content Type" "application/x-probity-session"
  WriteRegStr HKCU "Software\Classes\${PROG_ID}" "" "Probity audit session"
  WriteRegStr HKCU "Software\Classes\${PROG_ID}\DefaultIcon" "" "$INSTDIR\probity-gui.exe,0"
  WriteRegStr HKCU "Software\Classes\${PROG_ID}\shell\open\command" "" '"$INSTDIR\probity-gui.exe" "%1"'
  System::Call 'shell32::SHChangeNotify(i ${SHCNE_ASSOCCHANGED}, i ${SHCNF_IDLIST}, p 0, p 0)'

  ; Settings > Apps entry.
  WriteRegStr HKCU "${APP_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${APP_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${APP_KEY}" "Publisher" "Probity"
  WriteRegStr HKCU "${APP_KEY}" "Comments" "Offline model audit (${FLAVOUR} build)"
  WriteRegStr HKCU "${APP_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${APP_KEY}" "DisplayIcon" "$INSTDIR\probity-gui.exe,0"
  WriteRegStr HKCU "${APP_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${APP_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${APP_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${APP_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\Probity.lnk"
  Delete "$SMPROGRAMS\Probity command prompt.lnk"
  ; Only take the association back if it is still ours.
  ReadRegStr $0 HKCU "Software\Classes\.probity" ""
  StrCmp $0 "${PROG_ID}" 0 +2
    DeleteRegKey HKCU "Software\Classes\.probity"
  DeleteRegKey HKCU "Software\Classes\${PROG_ID}"
  System::Call 'shell32::SHChangeNotify(i ${SHCNE_ASSOCCHANGED}, i ${SHCNF_IDLIST}, p 0, p 0)'
  DeleteRegKey HKCU "${APP_KEY}"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\probity.exe"
  Delete "$INSTDIR\probity-gui.exe"
  Delete "$INSTDIR\THIRD-PARTY-LICENSES.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
